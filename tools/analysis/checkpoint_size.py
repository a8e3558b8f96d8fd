"""Size (and save / load time) of a pre-training checkpoint with its optimizer state.

What ``tools/train.py`` writes every epoch (mmengine's ``Runner.save_checkpoint`` through
``SafeCheckpointHook``): ``state_dict`` (student ``backbone.*``, decoder ``neck.*``, heads, the
EMA teacher ``teacher.module.*``; MR-MAE's frozen CLIP / DINO teachers are not saved), the
optimizer state (AdamW: ``exp_avg`` and ``exp_avg_sq`` per trainable parameter, fp32, and a
step counter; the AMP loss scale), ``meta``, ``message_hub`` and ``param_schedulers``.

Predicted without writing anything: the model is built on fake tensors (no memory) and the
bytes are summed as ``torch.save`` lays them out (one 64-byte-aligned zip record per storage).
``--save-dir DIR`` also builds the real model and optimizer state and writes the checkpoint as
the hook does (a temporary file, fsync, rename), timing the write and a ``torch.load`` of it,
and compares the file size with the prediction.

    python -m tools.analysis.checkpoint_size --vit-b --vit-l
    python -m tools.analysis.checkpoint_size configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py --save-dir /tmp/ckpt
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List

import torch

if __package__:
    from .pcae_bench import builder, memory
else:  # python tools/analysis/checkpoint_size.py
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from pcae_bench import builder, memory

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIB = 2**20
#: bytes torch.save adds per storage record: local header + central directory entry
#: (``archive/data/<n>`` names) + half of the 64-byte alignment padding on average
RECORD_OVERHEAD = 150
VIT_B = (
    'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pr_mim/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py',
    'configs/pr_mim/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py',
    'configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py',
    'configs/mr_mae/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k.py',
)
VIT_L = ('configs/pcae/pcae_vit-large-p16_8xb512-amp-coslr-800e_in1k.py', )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*')
    parser.add_argument('--vit-b', action='store_true', help='every ViT-B/16 recipe')
    parser.add_argument('--vit-l', action='store_true', help='the ViT-L recipe')
    parser.add_argument('--save-dir', help='also write the real checkpoint here and time it')
    parser.add_argument('--json', help='write the rows to this JSON file')
    return parser.parse_args(argv)


def _state_bytes(tensors) -> Dict[str, int]:
    seen, data, records = set(), 0, 0
    for t in tensors:
        s = t.untyped_storage()
        if s._cdata in seen:
            continue
        seen.add(s._cdata)
        data += s.nbytes()
        records += 1
    return dict(bytes=data + records * RECORD_OVERHEAD, tensors=records)


def _tensors(obj) -> List[torch.Tensor]:
    from torch.utils._pytree import tree_flatten
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def adamw_state(params: List[torch.Tensor]) -> Dict[int, Dict[str, torch.Tensor]]:
    """AdamW's per-parameter state after a step: two moments like the parameter, a 0-d fp32
    step counter (what ``torch.optim.AdamW`` keeps)."""
    return {i: dict(step=torch.tensor(1.0), exp_avg=torch.zeros_like(p),
                    exp_avg_sq=torch.zeros_like(p)) for i, p in enumerate(params)}


def predict(cfg) -> Dict:
    """Predicted checkpoint bytes of ``cfg`` (model on fake tensors)."""
    fake_mode, model, notes = memory.build_fake_model(cfg)
    with fake_mode:
        state_dict = model.state_dict()
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt_state = adamw_state(trainable)
    model_part = _state_bytes(_tensors(state_dict))
    opt_part = _state_bytes(_tensors(opt_state))
    extra = 64 * 1024  # data.pkl (keys, param groups, meta, message hub), scheduler states
    return dict(model_bytes=model_part['bytes'], optimizer_bytes=opt_part['bytes'],
                tensors=model_part['tensors'] + opt_part['tensors'],
                predicted_bytes=model_part['bytes'] + opt_part['bytes'] + extra,
                num_params=sum(p.numel() for p in model.parameters()),
                num_trainable=sum(p.numel() for p in trainable), notes=notes)


def save_and_time(cfg, folder: str) -> Dict:
    """Build the real model and optimizer state, write the checkpoint as SafeCheckpointHook
    does, read it back; sizes and seconds."""
    import tempfile

    from mmengine.optim import build_optim_wrapper
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    with tempfile.TemporaryDirectory() as tmp:
        builder.random_teacher_checkpoints(cfg, tmp)  # MR-MAE without its teacher files
        model = builder.build_model(cfg, torch.device('cpu'))
    ow = cfg.optim_wrapper.to_dict()
    for key in ('loss_scale', 'dtype', 'use_fsdp', 'device'):
        ow.pop(key, None)
    ow['type'] = 'OptimWrapper'
    wrapper = build_optim_wrapper(model, ow)
    groups = wrapper.optimizer.param_groups
    params = [p for g in groups for p in g['params']]
    for p, state in zip(params, adamw_state(params).values()):
        wrapper.optimizer.state[p] = state
    optimizer = wrapper.state_dict()
    if 'Amp' in str(cfg.optim_wrapper.get('type', '')):
        optimizer['loss_scaler'] = dict(scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                                        growth_interval=2000, _growth_tracker=0)
    checkpoint = dict(meta=dict(epoch=1, iter=1, cfg=cfg.pretty_text),
                      state_dict=weights_to_cpu(model.state_dict()), optimizer=optimizer,
                      message_hub=dict(log_scalars={}, runtime_info={}, resumed_keys={}),
                      param_schedulers=[])
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, 'epoch_1.pth')
    tmp = path + '.tmp'
    t0 = time.perf_counter()
    save_checkpoint(checkpoint, tmp)
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    save_s = time.perf_counter() - t0
    del checkpoint, wrapper, model
    t0 = time.perf_counter()
    loaded = torch.load(path, map_location='cpu', weights_only=False)
    load_s = time.perf_counter() - t0
    size = osp.getsize(path)
    del loaded
    os.remove(path)
    return dict(file_bytes=size, save_seconds=round(save_s, 2), load_seconds=round(load_s, 2),
                save_mib_per_s=round(size / MIB / save_s, 1))


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    specs = list(args.configs) + (list(VIT_B) if args.vit_b else []) + (
        list(VIT_L) if args.vit_l else [])
    if not specs:
        raise SystemExit('give config files, --vit-b or --vit-l')
    builder.register_all()
    rows = []
    for spec in specs:
        path = spec if osp.isfile(spec) else osp.join(ROOT, spec)
        cfg = builder.load_config(path)
        row = dict(name=builder.config_name(spec), config=spec, **predict(cfg))
        if args.save_dir:
            row.update(save_and_time(builder.load_config(path), args.save_dir))
            row['error'] = (row['predicted_bytes'] - row['file_bytes']) / row['file_bytes']
        rows.append(row)
    lines = ['| config | params M (trainable) | model MiB | AdamW MiB | predicted MiB |' +
             (' file MiB | error | save s | MiB/s | load s |' if args.save_dir else ''),
             '|---|---|---|---|---|' + ('---|---|---|---|---|' if args.save_dir else '')]
    for r in rows:
        cells = [r['name'], f"{r['num_params'] / 1e6:.1f} ({r['num_trainable'] / 1e6:.1f})",
                 f"{r['model_bytes'] / MIB:.0f}", f"{r['optimizer_bytes'] / MIB:.0f}",
                 f"{r['predicted_bytes'] / MIB:.0f}"]
        if args.save_dir:
            cells += [f"{r['file_bytes'] / MIB:.0f}", f"{r['error']:+.2%}", str(r['save_seconds']),
                      str(r['save_mib_per_s']), str(r['load_seconds'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
