"""Run the training-step and PTR benchmarks for lists of configs in one process."""
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .builder import config_name, load_config
from .ptr import (PTR_LOCATIONS, InferenceBench, count_gmacs, drop_ratio_of, summarize_ptr,
                  with_ptr)
from .report import add_ptr_speedups, add_train_ratios
from .timing import Progress
from .train_bench import TrainBench, free_memory, summarize_train

MAE_BASELINE = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'


def _load(spec: str, cfg_options: Optional[Dict]):
    cfg = load_config(spec)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def run_train_benchmarks(specs: Sequence[str],
                         baseline: str,
                         batch_size: int,
                         device: torch.device,
                         amp: str = 'none',
                         warmup: int = 1,
                         steps: int = 3,
                         rounds: int = 1,
                         flops: bool = True,
                         memory: bool = True,
                         img_size: Optional[int] = None,
                         cfg_options: Optional[Dict] = None,
                         random_teachers: bool = True,
                         progress: Optional[Progress] = None,
                         census: bool = True,
                         compile: bool = False,
                         peak_tflops: Optional[float] = None) -> Tuple[List[Dict], List[Dict]]:
    """Benchmark the training step of ``baseline`` and ``specs``.

    Every round builds each model in turn (baseline first), runs ``warmup`` untimed and
    ``steps`` timed steps, then frees it; the median is over all rounds' timed steps, so slow
    phases of a shared machine hit every config alike. FLOPs, memory and the sync / SDPA census
    (``census``) are taken in round 1, each in one extra step. With ``compile`` the models'
    forward is ``torch.compile``-d and FLOPs and the census are skipped (they would run the
    step under a dispatch mode, not the compiled graph). ``peak_tflops`` (the device's dense
    bf16 peak) adds the model-FLOP utilisation.
    A config that fails to build or run is reported in the errors, except the baseline, whose
    failure is raised.

    Returns:
        tuple: result rows (baseline first, with ratios to it) and errors
        (``dict(config, error)``).
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    progress = progress or Progress(False)
    specs = [baseline] + [s for s in specs if s != baseline]
    names = [config_name(s) for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f'config names must be distinct, got {names}')
    state = {s: dict(times=[], flops=None, memory=None, params=None, img_size=None, notes=[],
                     census=None) for s in specs}
    errors = {}
    for r in range(rounds):
        for spec, name in zip(specs, names):
            if spec in errors:
                continue
            progress(f'round {r + 1}/{rounds}: {name}')
            st = state[spec]
            bench = None
            try:
                bench = TrainBench(name, _load(spec, cfg_options), batch_size, device, amp,
                                   img_size, random_teachers, compile=compile)
                st['times'] += bench.time(warmup, steps, progress)
                if r == 0:
                    st['params'] = bench.num_params()
                    st['img_size'] = bench.img_size
                    st['notes'] = bench.notes
                    if flops and not compile:
                        st['flops'] = bench.flops()
                        progress(f'{name}: {st["flops"] / batch_size / 1e9:.1f} train '
                                 'GFLOPs/img')
                    if memory:
                        st['memory'] = bench.peak_memory()
                        progress(f'{name}: peak {st["memory"]["bytes"] / 2**20:.0f} MiB')
                    if census and not compile:
                        st['census'] = bench.census()
                        progress(f'{name}: {st["census"]["syncs"]} host syncs / step, SDPA '
                                 f'{st["census"]["sdpa_kernels"]}')
            except Exception as e:  # noqa: BLE001 - reported, the other configs still run
                if spec == baseline:
                    raise
                errors[spec] = f'{type(e).__name__}: {e}'
                progress(f'{name} FAILED: {errors[spec]}')
                progress(traceback.format_exc(limit=3))
            finally:
                if bench is not None:
                    bench.close()
                free_memory(device)
    rows = [summarize_train(n, s, batch_size, state[s]['times'], state[s]['flops'],
                            state[s]['memory'], state[s]['params'], state[s]['img_size'],
                            state[s]['notes'], state[s]['census'], peak_tflops)
            for s, n in zip(specs, names) if s not in errors]
    add_train_ratios(rows, names[0])
    return rows, [dict(config=s, error=e) for s, e in errors.items()]


def ptr_variants(specs: Sequence[str], base: Optional[str], drop_ratios: Optional[Sequence[float]],
                 locations: Sequence[int] = PTR_LOCATIONS,
                 cfg_options: Optional[Dict] = None) -> List[Tuple[str, float, object]]:
    """(name, drop ratio, config) for each PTR model to measure.

    With ``drop_ratios``: the ``base`` fine-tune config with ``token_reduction`` set by
    :func:`~.ptr.ptr_token_reduction` at ``locations``. Without: the given
    PTR configs as they are (their drop ratio read from ``model.backbone.token_reduction``).
    """
    variants = []
    if drop_ratios is not None:
        if base is None:
            raise ValueError('drop ratios need a base fine-tune config')
        cfg = _load(base, cfg_options)
        for d in drop_ratios:
            variants.append((f'{config_name(base)} drop{d:g}', float(d),
                             with_ptr(cfg, d, locations)))
        return variants
    if not specs:
        raise ValueError('no PTR config given')
    for spec in specs:
        cfg = _load(spec, cfg_options)
        variants.append((config_name(spec), drop_ratio_of(
            cfg.model.backbone.get('token_reduction')), cfg))
    return sorted(variants, key=lambda v: v[1])


def run_ptr_benchmarks(variants: Sequence[Tuple[str, float, object]],
                       batch_size: int,
                       device: torch.device,
                       amp: str = 'none',
                       warmup: int = 1,
                       steps: int = 3,
                       rounds: int = 1,
                       inference: bool = True,
                       train: bool = False,
                       progress: Optional[Progress] = None) -> List[Dict]:
    """Counted GMACs per image and measured inference (and fine-tune) throughput per variant.

    Rounds interleave the variants as in :func:`run_train_benchmarks`. With neither
    ``inference`` nor ``train`` only MACs are counted (no weights are even allocated).
    """
    progress = progress or Progress(False)
    state = {name: dict(gmacs=None, counts=None, infer=[], train=[]) for name, _, _ in variants}
    for r in range(rounds):
        for name, drop, cfg in variants:
            progress(f'PTR round {r + 1}/{rounds}: {name} (drop {drop:g})')
            st = state[name]
            if r == 0:
                st['gmacs'], st['counts'] = count_gmacs(cfg)
                progress(f'{name}: {st["gmacs"]:.2f} GMACs/img, tokens {st["counts"]}')
            if not (inference or train):
                continue
            bench = InferenceBench(name, cfg, batch_size, device, amp)
            try:
                if inference:
                    st['infer'] += bench.time_inference(warmup, steps, progress)
                if train:
                    st['train'] += bench.time_train(warmup, steps, progress)
            finally:
                bench.close()
                free_memory(device)
    rows = [summarize_ptr(name, drop, state[name]['gmacs'], state[name]['counts'], batch_size,
                          state[name]['infer'], state[name]['train'])
            for name, drop, _ in variants]
    add_ptr_speedups(rows)
    return rows
