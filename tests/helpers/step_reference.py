"""One fixed-seed CPU training step per tiny algorithm, reduced to exact numbers.

``record_step(name)`` builds the tiny config of ``name`` (see :data:`tests.helpers.TINY_CONFIGS`),
initialises it from seed 0, runs ``loss`` on a seeded batch, one AdamW step and the EMA update,
then a seeded eval-mode ``reconstruct``. It returns every loss term, and for every state-dict
key the float64 sum and absolute sum of the tensor after the step, all as ``float.hex``
strings, so a comparison is to the last bit (and the key set is the checkpoint layout).

The reference in ``tests/data/step_reference.json`` was written from the code before the
issue-12 redesign with::

    python -m tests.helpers.step_reference --write
"""
import argparse
import json
import os
import os.path as osp
import platform
import tempfile
from typing import Dict

import torch

from . import ROOT, TINY_CONFIGS, save_random_teachers, tiny_config

REFERENCE = osp.join(ROOT, 'tests', 'data', 'step_reference.json')


def _field(out, name):
    """``out.name`` for the typed output, ``out[name]`` for the older dicts."""
    return out[name] if isinstance(out, dict) else getattr(out, name)


def _hex(t: torch.Tensor) -> str:
    return float(t.detach().double().sum()).hex()


def environment() -> Dict[str, str]:
    """What the exact numbers depend on besides the code."""
    return dict(torch=torch.__version__, machine=platform.machine(),
                cpu_capability=torch.backends.cpu.get_cpu_capability(), cpu=cpu_model())


def cpu_model() -> str:
    """The processor's model name (/proc/cpuinfo): an AMD EPYC and an Intel Xeon share the
    AVX512 kernels of one torch build and still round differently in the last bits."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def record_step(name: str) -> Dict:
    """Exact summary of one training step of the tiny ``name`` model (see module doc)."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import pcae_mm  # noqa: F401
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = Config.fromfile(tiny_config(name))
        with tempfile.TemporaryDirectory() as tmp:
            if 'teachers' in cfg.model:
                save_random_teachers(cfg, tmp)
            torch.manual_seed(0)
            model = MODELS.build(cfg.model)
            model.init_weights()
        if hasattr(model, 'teacher'):
            model.teacher.set_schedule(10)
        part = getattr(model, 'partial_reconstruction', None)
        if part is not None:
            part.set_progress(0.3)  # share 0.6: some thrown patches supervised, not all
        model.train()
        torch.manual_seed(1)
        size = cfg.model.backbone.img_size
        x = torch.randn(2, 3, size, size)
        losses = model.loss(x, [])
        loss, _ = model.parse_losses(losses)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(model, 'momentum_update'):
            model.momentum_update()
        model.eval()
        torch.manual_seed(2)
        out = model.reconstruct(x)
        state = model.state_dict()
        return dict(
            losses={k: _hex(v) for k, v in sorted(losses.items())},
            pred=_hex(_field(out, 'pred')),
            mask=_hex(_field(out, 'mask')),
            state={k: [_hex(v), _hex(v.abs())] for k, v in state.items()},
        )
    finally:
        torch.set_num_threads(threads)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--write', action='store_true', help=f'write {REFERENCE}')
    parser.add_argument('--names', nargs='*', default=sorted(TINY_CONFIGS))
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    ref = dict(environment=environment(),
               steps={name: record_step(name) for name in args.names})
    if args.write:
        with open(REFERENCE, 'w') as f:
            json.dump(ref, f, indent=1, sort_keys=True)
        print(f'wrote {REFERENCE}')
    else:
        print(json.dumps({n: s['losses'] for n, s in ref['steps'].items()}, indent=1))


if __name__ == '__main__':
    main()
