"""Predict the peak GPU memory of a pre-training config before launching it.

Runs one training step of the config (its model, optimizer and parameter groups, custom hooks)
on fake tensors (torch's ``FakeTensorMode``: shapes and dtypes, no data, no GPU) and counts the
live tensor storages as the CUDA caching allocator would hand them out
(``tools/analysis/pcae_bench/memory.py``, :func:`predict_training_memory`). Prints, per config:
parameters (trainable / frozen), AdamW state, teachers, activations saved for backward, what
stays resident between steps, the step's own peak and the predicted peak
(``torch.cuda.max_memory_allocated``), and whether it fits ``--gpu-memory``.

Examples::

    python -m tools.analysis.memory_estimate configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py --batch 256
    python -m tools.analysis.memory_estimate configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py --world-size 8
    python -m tools.analysis.memory_estimate --vit-b --batch 256 --gpu-memory 80   # every ViT-B recipe

``--amp auto`` (default) reads the config: ``AmpOptimWrapper`` -> fp16 autocast (its ``dtype``
when set), an FSDP strategy -> FSDP's bf16 with ``--world-size`` GPUs (default 8, the recipe's),
otherwise fp32. A ViT-B batch-256 step takes a few seconds on a CPU.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

if __package__:
    from .pcae_bench import builder, memory
else:  # python tools/analysis/memory_estimate.py
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from pcae_bench import builder, memory

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIB = 2**20
#: The ViT-B/16 pre-training recipes (--vit-b): the paper settings of every method.
VIT_B = (
    'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pr_mim/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pr_mim/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py',
    'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py',
    'configs/mr_mae/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k.py',
)
VIT_L_FSDP = 'configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='config files (or pkg::path)')
    parser.add_argument('--vit-b', action='store_true',
                        help='add every ViT-B/16 recipe (stock mmpretrain MAE included)')
    parser.add_argument('--vit-l-fsdp', action='store_true', help=f'add {VIT_L_FSDP}')
    parser.add_argument('--batch', type=int,
                        help="images per GPU (default: the config's train_dataloader.batch_size)")
    parser.add_argument('--amp', choices=['auto', 'none', 'fp16', 'bf16'], default='auto',
                        help='autocast dtype; auto: from the config (AmpOptimWrapper: fp16)')
    parser.add_argument('--world-size', type=int, default=8,
                        help='GPUs of an FSDP config (parameters, gradients, AdamW sharded)')
    parser.add_argument('--device-kind', choices=['cuda', 'cpu'], default='cuda',
                        help='allocator and autocast policy to mimic')
    parser.add_argument('--img-size', type=int, help="input size (default: the backbone's)")
    parser.add_argument('--autocast-scope', choices=['forward', 'step'], default='forward',
                        help="forward: AmpOptimWrapper's (tools/train.py); step: benchmark.py's "
                        'bf16 path, whose cast weights live through backward')
    parser.add_argument('--gpu-memory', type=float, help='GiB per GPU: say whether it fits')
    parser.add_argument('--set', default='', help='label written into the JSON rows')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--no-random-teachers', action='store_true',
                        help='fail on frozen teachers whose checkpoint is missing')
    return parser.parse_args(argv)


def resolve(spec: str) -> str:
    if '::' in spec or osp.isfile(spec):
        return spec
    return osp.join(ROOT, spec) if osp.isfile(osp.join(ROOT, spec)) else spec


def is_fsdp(cfg) -> bool:
    strategy = cfg.get('strategy') or {}
    wrapper = strategy.get('model_wrapper') or {}
    return 'FSDP' in str(strategy.get('type', '')) or 'FSDP' in str(wrapper.get('type', ''))


def amp_of(cfg, requested: str) -> str:
    """The autocast dtype a run of ``cfg`` uses (``requested`` unless 'auto')."""
    if requested != 'auto':
        return requested
    ow = cfg.get('optim_wrapper') or {}
    if 'Amp' in str(ow.get('type', '')):
        dtype = str(ow.get('dtype') or 'float16')
        return 'bf16' if 'bfloat16' in dtype else 'fp16'
    return 'none'


def estimate(spec: str, args) -> Dict:
    cfg = builder.load_config(resolve(spec))
    batch = args.batch or int(cfg.get('train_dataloader', {}).get('batch_size', 1))
    fsdp = is_fsdp(cfg)
    amp = 'none' if fsdp and args.amp == 'auto' else amp_of(cfg, args.amp)
    t0 = time.perf_counter()
    pred = memory.predict_training_memory(
        cfg, batch, amp=amp, device_kind=args.device_kind,
        fsdp_world_size=args.world_size if fsdp else None, img_size=args.img_size,
        random_teachers=not args.no_random_teachers, autocast_scope=args.autocast_scope)
    pred.update(name=builder.config_name(spec), config=spec, set=args.set,
                label=builder.config_name(spec) + (f" ({spec.split('::')[0]})" if '::' in spec
                                                   else ''),
                precision='fsdp-bf16' if fsdp else amp, peak_mib=pred['peak'] / MIB,
                seconds=round(time.perf_counter() - t0, 1))
    if args.gpu_memory:
        pred['fits'] = pred['peak'] <= args.gpu_memory * 2**30
    return pred


def table(rows: List[Dict], gpu_memory: Optional[float]) -> str:
    gib = 2**30
    head = ('| config | batch | precision | params M (trainable / frozen) | weights GiB | '
            'AdamW GiB | teachers GiB | activations GiB | resident GiB | step GiB | '
            'peak GiB |' + (f' fits {gpu_memory:g} GiB |' if gpu_memory else ''))
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for r in rows:
        weights = r['params_trainable'] + r['params_frozen'] + r['buffers']
        cells = [r['label'], str(r['batch_size']), r['precision'] + (
            f" x{r['fsdp_world_size']}" if r.get('fsdp_world_size') else ''),
            f"{r['num_params_trainable'] / 1e6:.1f} / {r['num_params_frozen'] / 1e6:.1f}",
            f'{weights / gib:.2f}', f"{r['optimizer_state'] / gib:.2f}",
            f"{r['teachers'] / gib:.2f}", f"{r['activations_saved'] / gib:.2f}",
            f"{r['resident'] / gib:.2f}", f"{r['step'] / gib:.2f}", f"{r['peak'] / gib:.2f}"]
        if gpu_memory:
            cells.append('yes' if r['fits'] else '**no**')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    specs = list(args.configs) + (list(VIT_B) if args.vit_b else []) + (
        [VIT_L_FSDP] if args.vit_l_fsdp else [])
    if not specs:
        raise SystemExit('give config files, --vit-b or --vit-l-fsdp')
    builder.register_all()
    rows, errors = [], []
    for spec in specs:
        try:
            rows.append(estimate(spec, args))
            r = rows[-1]
            print(f"{r['name']}: peak {r['peak'] / 2**30:.2f} GiB at batch {r['batch_size']} "
                  f"({r['precision']}; {r['seconds']} s)", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - one config failing does not stop the others
            errors.append(dict(config=spec, error=f'{type(e).__name__}: {e}'))
            print(f'{spec}: not estimated: {type(e).__name__}: {e}', file=sys.stderr)
    print(table(rows, args.gpu_memory))
    notes = sorted({n for r in rows for n in r['notes']})
    for n in notes:
        print(f'- {n}')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(rows=rows, errors=errors, device_kind=args.device_kind), f, indent=1)
    if errors and not rows:
        raise SystemExit(1)
    return rows


if __name__ == '__main__':
    main()
