"""One fixed-seed CPU training step per tiny algorithm equals the reference recorded from the
code before the issue-12 redesign: the loss terms, every parameter after one AdamW step and the
EMA update, and the eval-mode predictions, to the last bit; the state-dict keys (the checkpoint
layout) are the same. Regenerate the reference only for a deliberate numerical change:
``python -m tests.helpers.step_reference --write`` (and say why in the commit)."""
import json

import pytest

from tests.helpers import TINY_CONFIGS
from tests.helpers.step_reference import REFERENCE, environment, record_step

with open(REFERENCE) as f:
    REF = json.load(f)


def _floats(step: dict) -> dict:
    """Every recorded number by name (losses, predictions, per-tensor sums)."""
    out = {f'losses.{k}': v for k, v in step['losses'].items()}
    out.update(pred=step['pred'], mask=step['mask'])
    for k, (total, absolute) in step['state'].items():
        out[f'{k}.sum'], out[f'{k}.abs'] = total, absolute
    return {k: float.fromhex(v) for k, v in out.items()}


@pytest.mark.parametrize('name', sorted(TINY_CONFIGS))
def test_training_step_matches_the_reference(name):
    ref = REF['steps'][name]
    got = record_step(name)
    assert sorted(got['state']) == sorted(ref['state']), 'checkpoint keys changed'
    assert sorted(got['losses']) == sorted(ref['losses'])
    want, have = _floats(ref), _floats(got)
    if REF['environment'] == environment():  # same torch build and CPU kernels: bit-exact
        wrong = [k for k in want if have[k] != want[k]]
    else:  # another machine's kernels may round differently: close, not equal
        wrong = [k for k in want if have[k] != pytest.approx(want[k], rel=1e-4, abs=1e-6)]
    assert not wrong, f'{len(wrong)} numbers differ, e.g. ' + ', '.join(
        f'{k}: {have[k]!r} != {want[k]!r}' for k in wrong[:5])
