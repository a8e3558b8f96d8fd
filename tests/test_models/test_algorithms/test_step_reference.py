"""One fixed-seed CPU training step per tiny algorithm equals the reference recorded from the
code before the issue-12 redesign: the loss terms, every parameter after one AdamW step and the
EMA update, and the eval-mode predictions, to the last bit on a machine kind with a reference
(tests/data/step_reference.json holds one per CPU kind CI has run on), within the measured
cross-CPU tolerance elsewhere; the state-dict keys (the checkpoint layout) are the same.
Regenerate the reference only for a deliberate numerical change:
``python -m tests.helpers.step_reference --write`` (and say why in the commit); add a machine kind
with ``--add``."""
import copy

import pytest

from tests.helpers import TINY_CONFIGS
from tests.helpers.step_reference import (compare, environment, load_references, record_step,
                                          reference_for)

REFS = load_references()


@pytest.mark.parametrize('name', sorted(TINY_CONFIGS))
def test_training_step_matches_the_reference(name):
    own = reference_for(REFS, environment())
    ref = (own or REFS[0])['steps'][name]
    got = record_step(name)
    assert sorted(got['state']) == sorted(ref['state']), 'checkpoint keys changed'
    assert sorted(got['losses']) == sorted(ref['losses'])
    wrong = compare(ref, got, exact=own is not None)
    assert not wrong, f'{len(wrong)} numbers differ ({"bit-exact" if own else "tolerance"} ' \
        f'comparison), e.g. ' + ', '.join(wrong[:5])


def test_the_machine_kinds_agree_within_the_tolerance():
    """Every reference is the same code on another CPU: the tolerance used on a machine kind
    without a reference accepts each one against the others."""
    assert len({str(sorted(r['environment'].items())) for r in REFS}) == len(REFS)
    for a in REFS:
        for b in REFS:
            for name in TINY_CONFIGS:
                assert not compare(a['steps'][name], b['steps'][name], exact=False), name


def test_the_tolerance_catches_a_changed_step():
    """The cross-machine comparison still sees a wrong step: a weight tensor's abs-sum 5% off
    (a doubled AdamW step moves a weight of mean |w| about 0.02 by lr=1e-3 more: about 5%), its
    sum off by 5% of its abs-sum, a loss term off by 1e-4, or a prediction off by 1% or NaN."""
    ref = REFS[0]['steps']['mae']
    key = 'backbone.layers.0.attn.qkv.weight'
    assert not compare(ref, ref, exact=True)
    total, absolute = (float.fromhex(v) for v in ref['state'][key])
    for change in [dict(state=[total.hex(), (absolute * 1.05).hex()]),
                   dict(state=[(total + 0.05 * absolute).hex(), absolute.hex()]),
                   dict(losses=(float.fromhex(ref['losses']['loss']) * (1 + 1e-4)).hex()),
                   dict(pred=(float.fromhex(ref['pred']) * 1.01).hex()),
                   dict(pred=float('nan').hex())]:
        bad = copy.deepcopy(ref)
        if 'state' in change:
            bad['state'][key] = change['state']
        elif 'losses' in change:
            bad['losses']['loss'] = change['losses']
        else:
            bad['pred'] = change['pred']
        assert compare(ref, bad, exact=False), change
