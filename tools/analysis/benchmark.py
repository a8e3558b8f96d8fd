"""Benchmark pre-training configs against mmpretrain's stock MAE, and PTR fine-tuning.

In one process: for mmpretrain's own MAE ViT-B/16 config (the baseline, always included) and
every given config, the median training-step time (forward + backward + optimizer step, plus the
config's custom hooks such as the EMA-teacher update) after warm-up, images/s, peak memory and
counted FLOPs per image of the training step, the model-FLOP utilisation on a known GPU, the
host-device syncs per step and the SDPA kernel that ran (plus each SDPA backend tried alone);
then counted GMACs and measured inference (and optionally fine-tune) throughput for PTR drop
ratios. Prints the table with ratios to MAE and writes ``<out-dir>/<stem>.json`` and ``.md``.
See docs/BENCHMARK.md; ``tools/device/gpu_bench.sh`` runs it in a short GPU window.

Example (CPU, small batch)::

    python -m tools.analysis.benchmark --batch-size 4 --steps 3 --rounds 2

(from the repository root; ``python tools/analysis/benchmark.py`` works too).
"""
import argparse
import glob
import os.path as osp
import platform
import sys
from datetime import datetime, timezone

import torch
from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if not __package__:  # run by path: import as `python -m tools.analysis.benchmark` (PEP 366)
    sys.path[0] = ROOT
    __package__ = 'tools.analysis'

from .pcae_bench import (builder, census, devices, memory, ptr, report, runner,  # noqa: E402
                         targets, timing)

# ViT-B/16 pre-training configs benchmarked when none are given (those that exist).
DEFAULT_CONFIGS = (
    'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pr_mim/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py',
    'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py',
    'configs/mr_mae/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k.py',
)
PTR_CONFIG_GLOB = 'configs/pcae/benchmarks/vit-base-p16_ptr-drop*.py'
FINETUNE_BASE = 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with tools/analysis/ptr_flops.py."""
    parser.add_argument('--device', default='auto', help="'auto' (cuda if present), 'cpu', "
                        "'cuda', 'cuda:1'")
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none',
                        help='autocast dtype (fp16 with dynamic loss scaling: CUDA only)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per round (CPU: the first steps page-fault)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per round')
    parser.add_argument('--rounds', type=int, default=1,
                        help='repeat the whole list this many times, interleaved')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--out-dir', default='benchmark_results', help='where JSON/Markdown go')
    parser.add_argument('--no-progress', action='store_true', help='no progress lines')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, key=value')


def add_ptr_args(parser: argparse.ArgumentParser, default_batch: int) -> None:
    parser.add_argument('--ptr-configs', nargs='+',
                        help=f'PTR fine-tune configs (default: {PTR_CONFIG_GLOB})')
    parser.add_argument('--ptr-drop-ratios', nargs='+', type=float,
                        help='instead of PTR configs: these drop ratios on --ptr-base, e.g. '
                        + ' '.join(f'{d:g}' for d in ptr.DROP_RATIOS))
    parser.add_argument('--ptr-base', default=FINETUNE_BASE,
                        help='fine-tune config that --ptr-drop-ratios modify')
    parser.add_argument('--ptr-locations', nargs='+', type=int, default=list(ptr.PTR_LOCATIONS),
                        help='blocks after which tokens drop (with --ptr-drop-ratios)')
    parser.add_argument('--ptr-batch-size', type=int, default=default_batch,
                        help='images per inference / fine-tune call')
    parser.add_argument('--ptr-train', action='store_true',
                        help='also time fine-tuning steps per drop ratio')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='configs to compare with MAE (default: the '
                        'ViT-B/16 configs of PCAE, PR-MIM, SdAE, MR-MAE that exist)')
    parser.add_argument('--baseline', default=runner.MAE_BASELINE, help='baseline config')
    parser.add_argument('--batch-size', type=int, default=4, help='images per training step')
    parser.add_argument('--img-size', type=int, help='input size (default: the backbone\'s)')
    parser.add_argument('--no-flops', action='store_true', help='skip FLOP counting')
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--no-ptr', action='store_true', help='skip the PTR section')
    parser.add_argument('--no-census', action='store_true',
                        help='skip the host-sync / SDPA-kernel census step')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile every model\'s forward (no FLOPs / census then)')
    parser.add_argument('--no-sdpa-probe', action='store_true',
                        help='skip trying each SDPA backend on a ViT-B attention shape')
    parser.add_argument('--peak-tflops', type=float,
                        help='dense bf16 peak of the GPU for MFU (default: from its name)')
    parser.add_argument('--no-random-teachers', action='store_true',
                        help='fail on frozen teachers (MR-MAE) whose checkpoint is missing '
                        'instead of giving them random weights')
    parser.add_argument('--stem', default='benchmark', help='output file name stem')
    add_common_args(parser)
    add_ptr_args(parser, default_batch=8)
    _data_pipeline().add_args(parser)
    return parser.parse_args(argv)


def _data_pipeline():
    """The input-pipeline benchmark (``--data-only``; pcae_bench/data_pipeline.py)."""
    from .pcae_bench import data_pipeline
    return data_pipeline


def default_configs() -> list:
    return [c for c in DEFAULT_CONFIGS if osp.isfile(osp.join(ROOT, c))]


def resolve(path: str) -> str:
    """Config paths relative to the repository root also work from elsewhere."""
    if '::' in path or osp.isfile(path):
        return path
    return osp.join(ROOT, path) if osp.isfile(osp.join(ROOT, path)) else path


def setup(args) -> torch.device:
    if args.threads:
        torch.set_num_threads(args.threads)
    builder.register_all()
    device = builder.resolve_device(args.device)
    if device.type != 'cuda' and args.amp == 'fp16':
        raise ValueError('--amp fp16 needs a CUDA device; use --amp bf16 on CPU')
    return device


def peak_of(args, device: torch.device):
    """The device's dense peak (TFLOP/s) for MFU: ``--peak-tflops`` or the table's."""
    if getattr(args, 'peak_tflops', None):
        return args.peak_tflops
    if device.type != 'cuda':
        return None
    return devices.peak_tflops(torch.cuda.get_device_name(device), args.amp)


def meta_info(args, device: torch.device, batch_size: int, baseline: str = '') -> dict:
    info = dict(
        device=builder.describe_device(device), device_type=device.type, torch=torch.__version__,
        python=platform.python_version(), amp=args.amp, batch_size=batch_size,
        warmup=args.warmup, steps=args.steps, rounds=args.rounds,
        memory_method=memory.PeakMemoryMeter(device).method, baseline=baseline,
        date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
        command=' '.join([osp.basename(sys.argv[0])] + sys.argv[1:]))
    info.update(compile=bool(getattr(args, 'compile', False)), peak_tflops=peak_of(args, device),
                syncs_emulated=device.type == 'cpu' and not getattr(args, 'no_census', True))
    if device.type == 'cuda':
        info['cuda'] = torch.version.cuda
        info['sdpa_enabled'] = dict(
            flash=torch.backends.cuda.flash_sdp_enabled(),
            mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
            cudnn=getattr(torch.backends.cuda, 'cudnn_sdp_enabled', lambda: None)(),
            math=torch.backends.cuda.math_sdp_enabled())
    return info


def run_ptr_section(args, device, progress) -> tuple:
    if args.ptr_drop_ratios is not None:
        variants = runner.ptr_variants([], resolve(args.ptr_base), args.ptr_drop_ratios,
                                       args.ptr_locations, args.cfg_options)
    else:
        specs = [resolve(c) for c in args.ptr_configs] if args.ptr_configs else sorted(
            glob.glob(osp.join(ROOT, PTR_CONFIG_GLOB)))
        if not specs:
            raise FileNotFoundError(f'no PTR configs ({PTR_CONFIG_GLOB}); pass --ptr-configs '
                                    'or --ptr-drop-ratios')
        variants = runner.ptr_variants(specs, None, None, cfg_options=args.cfg_options)
    timed = not getattr(args, 'macs_only', False)
    rows = runner.run_ptr_benchmarks(variants, args.ptr_batch_size, device, args.amp,
                                     args.warmup, args.steps, args.rounds, inference=timed,
                                     train=timed and args.ptr_train, progress=progress)
    locations = sorted({tuple(cfg.model.backbone.token_reduction.locations)
                        for _, _, cfg in variants if cfg.model.backbone.get('token_reduction')})
    return rows, dict(batch_size=args.ptr_batch_size,
                      locations=[list(l) for l in locations] or list(args.ptr_locations))


def sdpa_probe(args, device: torch.device) -> dict:
    """Each SDPA backend alone on ViT-B/16's attention (batch ``--batch-size``; 2 on CPU)."""
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(args.amp, torch.float32)
    batch = args.batch_size if device.type == 'cuda' else min(args.batch_size, 2)
    return census.probe_sdpa(device, dtype, (batch, 12, 197, 64))


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    progress = timing.Progress(not args.no_progress)
    if args.data_only:  # images/s per CPU core of the input pipelines (issue 24)
        args.stem = 'data_pipeline' if args.stem == 'benchmark' else args.stem
        return _data_pipeline().main(args, device, progress)
    configs = [resolve(c) for c in (args.configs or default_configs())]
    result = dict(meta=meta_info(args, device, args.batch_size))
    if not args.no_sdpa_probe:
        result['meta']['sdpa_probe'] = sdpa_probe(args, device)
        progress(f"SDPA backends: {result['meta']['sdpa_probe']}")
    train_rows, errors = runner.run_train_benchmarks(
        configs, resolve(args.baseline), args.batch_size, device, args.amp, args.warmup,
        args.steps, args.rounds, flops=not args.no_flops, memory=not args.no_memory,
        img_size=args.img_size, cfg_options=args.cfg_options,
        random_teachers=not args.no_random_teachers, progress=progress,
        census=not args.no_census, compile=args.compile, peak_tflops=peak_of(args, device))
    result['meta']['baseline'] = train_rows[0]['name']
    result.update(train=train_rows, errors=errors)
    if not args.no_ptr:
        # the training table is on disk before the PTR section starts (a run cut short by a
        # time limit keeps it)
        report.write_outputs(result, args.out_dir, args.stem)
        result['ptr'], result['ptr_meta'] = run_ptr_section(args, device, progress)
    result['targets'] = targets.check_targets(train_rows, result.get('ptr', []))
    print(report.render(result, markdown=False))
    paths = report.write_outputs(result, args.out_dir, args.stem)
    print(f"wrote {paths['json']} and {paths['markdown']}")
    return result


if __name__ == '__main__':
    main()
