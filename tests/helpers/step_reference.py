"""One fixed-seed CPU training step per tiny algorithm, reduced to exact numbers.

``record_step(name)`` builds the tiny config of ``name`` (see :data:`tests.helpers.TINY_CONFIGS`),
initialises it from seed 0, runs ``loss`` on a seeded batch, one AdamW step and the EMA update,
then a seeded eval-mode ``reconstruct``. It returns every loss term, and for every state-dict
key the float64 sum and absolute sum of the tensor after the step, all as ``float.hex``
strings, so a comparison is to the last bit (and the key set is the checkpoint layout).

``tests/data/step_reference.json`` holds one reference per machine kind (:func:`environment`:
torch build, CPU capability and CPU model), all recorded from the same code: CPUs with the same
AVX512 kernels of one torch build still round differently in the last bits (an AMD EPYC and an
Intel Xeon, the two kinds CI has run on, differ in 765 of 941 tensor sums). On a machine kind with
a reference the comparison is bit-exact; on another one it is within :data:`TOLERANCE`.

    python -m tests.helpers.step_reference --write   # a deliberate numerical change: the
                                                     # references become this machine's only
    python -m tests.helpers.step_reference --add     # another machine kind, same code: added
                                                     # only if it agrees within TOLERANCE
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
from typing import Dict, List, Optional

import torch

from . import ROOT, TINY_CONFIGS, save_random_teachers, tiny_config

REFERENCE = osp.join(ROOT, 'tests', 'data', 'step_reference.json')

#: Another machine kind's numbers agree with a reference within these (relative) bounds.
#: Measured between the AMD EPYC and the Intel Xeon references (and 1 vs 2 threads on one of
#: them): the loss terms (a forward on the initial weights) differ by at most 2.1e-7, the
#: predictions by 2.6e-5; after the AdamW step a tensor's sum moves by up to 7.5e-3 of its
#: absolute sum and the absolute sum by up to 3.8e-3 (AdamW's first step turns a near-zero
#: gradient of either rounding into a +lr or -lr update). The bounds leave a margin of 2.5-40x.
TOLERANCE = dict(losses=1e-5, pred=1e-3, mask=0.0, sum=2e-2, abs=1e-2)


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


def load_references(path: str = REFERENCE) -> List[Dict]:
    """The recorded references, each ``dict(environment=..., steps={name: record_step(name)})``."""
    with open(path) as f:
        return json.load(f)['references']


def reference_for(references: List[Dict], env: Dict[str, str]) -> Optional[Dict]:
    """The reference recorded on this machine kind, or None."""
    return next((r for r in references if r['environment'] == env), None)


def compare(want: Dict, have: Dict, exact: bool) -> List[str]:
    """The numbers of one step (:func:`record_step`) that differ: any bit with ``exact``, else
    beyond :data:`TOLERANCE`; each as ``'name: have != want'``."""
    wrong = []

    def check(key: str, a: str, b: str, rel: float, scale: Optional[float] = None) -> None:
        x, y = float.fromhex(a), float.fromhex(b)
        bound = 0.0 if exact else rel * (abs(y) if scale is None else scale)
        if not abs(x - y) <= bound:  # a NaN is never close
            wrong.append(f'{key}: {x!r} != {y!r}')

    for k, v in want['losses'].items():
        check(f'losses.{k}', have['losses'][k], v, TOLERANCE['losses'])
    check('pred', have['pred'], want['pred'], TOLERANCE['pred'])
    check('mask', have['mask'], want['mask'], TOLERANCE['mask'])
    for k, (total, absolute) in want['state'].items():
        scale = float.fromhex(absolute)  # a tensor's sum and abs-sum relative to its abs-sum
        check(f'{k}.sum', have['state'][k][0], total, TOLERANCE['sum'], scale)
        check(f'{k}.abs', have['state'][k][1], absolute, TOLERANCE['abs'], scale)
    return wrong


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--write', action='store_true',
                       help=f'make this machine kind\'s step the only reference in {REFERENCE} '
                       '(a deliberate numerical change)')
    group.add_argument('--add', action='store_true',
                       help='add (or replace) this machine kind\'s reference, after checking that '
                       'it agrees with every other one within TOLERANCE (same code, other CPU)')
    parser.add_argument('--names', nargs='*', default=sorted(TINY_CONFIGS))
    args = parser.parse_args(argv)
    if args.add and set(args.names) != set(TINY_CONFIGS):
        parser.error('--add records every tiny config (leave out --names)')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    ref = dict(environment=environment(),
               steps={name: record_step(name) for name in args.names})
    if not (args.write or args.add):
        print(json.dumps({n: s['losses'] for n, s in ref['steps'].items()}, indent=1))
        return
    others = []
    if args.add:
        others = [r for r in load_references() if r['environment'] != ref['environment']]
        for other in others:
            for name in args.names:
                wrong = compare(other['steps'][name], ref['steps'][name], exact=False)
                if wrong:
                    sys.exit(f'not added: {name} differs from the reference of '
                             f'{other["environment"]} beyond TOLERANCE in {len(wrong)} numbers, '
                             f'e.g. {wrong[:3]}. A numerical change is recorded with --write.')
    with open(REFERENCE, 'w') as f:
        json.dump(dict(references=others + [ref]), f, indent=1, sort_keys=True)
    print(f'wrote {REFERENCE}: {len(others) + 1} machine kinds')


if __name__ == '__main__':
    main()
