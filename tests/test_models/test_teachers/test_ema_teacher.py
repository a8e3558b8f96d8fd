import math

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers import EMATeacher, FoldedEMATeacher, MaskedEMATeacher
from pcae_mm.models.teachers.ema import canonical_name
from pcae_mm.models.utils import TokenReduction
from tests.helpers import tiny_vit


def vit_teacher(cls=MaskedEMATeacher, **kwargs):
    vit = MODELS.build(tiny_vit())
    vit.init_weights()
    return cls(vit, **kwargs)


def test_cosine_schedule_endpoints_and_midpoint():
    t = EMATeacher(nn.Linear(2, 2), momentum=0.9999, end_momentum=1.0)
    t.set_schedule(100)
    assert t.momentum_at(0) == pytest.approx(0.9999)
    assert t.momentum_at(50) == pytest.approx(0.99995)
    assert t.momentum_at(100) == pytest.approx(1.0)
    assert t.momentum_at(25) == pytest.approx(1.0 - 0.0001 * (math.cos(math.pi / 4) + 1) / 2)


def test_update_follows_formula_and_steps_buffer():
    student = nn.Linear(3, 3)
    t = EMATeacher(student, momentum=0.9, end_momentum=0.9, schedule='constant')
    before = t.module.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    t.update_parameters(student)
    assert torch.allclose(t.module.weight, 0.9 * before + 0.1 * student.weight)
    assert int(t.steps) == 1
    assert 'steps' in t.state_dict()


def test_teacher_stays_in_eval_and_has_no_grad():
    t = EMATeacher(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    t.train()
    assert not t.module.training
    assert all(not p.requires_grad for p in t.parameters())


def test_missing_schedule_length_is_a_clear_error():
    t = EMATeacher(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match='EMATeacherHook'):
        t.momentum_at(3)
    with pytest.raises(ValueError, match='>= 1 update'):
        t.set_schedule(0)


@pytest.mark.parametrize('kwargs', [dict(momentum=1.5), dict(schedule='linear'),
                                    dict(update_by='step')])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EMATeacher(nn.Linear(2, 2), **kwargs)


def test_masked_teacher_equals_full_attention_over_the_same_tokens():
    teacher = vit_teacher()
    vit = teacher.module
    x = torch.randn(2, 3, 96, 96)
    ids = torch.tensor([[5, 1, 7, 30], [0, 2, 4, 6]])
    out = teacher(x, ids)
    assert out.tokens.shape == (2, 4, 64) and torch.equal(out.ids, ids) and out.stage_ids == []
    assert not out.tokens.requires_grad  # the forward runs without autograd
    # reference: the same patches, hand-gathered, through the blocks
    patches = vit.patch_embed(x)[0] + vit.pos_embed[:, 1:]
    ref = torch.stack([patches[b, ids[b]] for b in range(2)])
    for layer in vit.layers:
        ref = layer(ref)
    assert torch.allclose(out.tokens, vit.ln1(ref), atol=1e-5)


def test_masked_teacher_reduces_tokens_and_tracks_ids():
    teacher = vit_teacher(token_reduction=TokenReduction([0, 2], keep_ratio=0.5))
    ids = torch.arange(8, 16).expand(2, -1)
    out = teacher(torch.randn(2, 3, 96, 96), ids)
    assert [s.shape[1] for s in out.stage_ids] == [4, 2]
    assert out.tokens.shape == (2, 2, 64) and torch.equal(out.ids, out.stage_ids[-1])
    assert set(out.ids.flatten().tolist()) <= set(range(8, 16))


def test_folded_teacher_folds_do_not_attend_to_each_other():
    teacher = vit_teacher(FoldedEMATeacher, num_folds=3)
    alone = FoldedEMATeacher(teacher.module, num_folds=1)  # a copy of the same weights
    x = torch.randn(1, 3, 96, 96)
    ids = torch.arange(12).unsqueeze(0)
    folded = teacher(x, ids)
    assert folded.tokens.shape == (1, 12, 64) and torch.equal(folded.ids, ids)
    assert torch.allclose(folded.tokens[:, 4:8], alone(x, ids[:, 4:8]).tokens, atol=1e-5)
    # with its own cls, a fold differs from the same patches encoded without one
    assert not torch.allclose(folded.tokens[:, 4:8],
                              MaskedEMATeacher(teacher.module)(x, ids[:, 4:8]).tokens, atol=1e-3)
    with pytest.raises(ValueError, match='equal folds'):
        teacher(x, ids[:, :10])


def test_update_matches_wrapped_parameter_names():
    assert canonical_name('_fsdp_wrapped_module.layers.0._fsdp_wrapped_module.ln1.weight') == \
        'layers.0.ln1.weight'
    assert canonical_name('layers.0._checkpoint_wrapped_module.attn.qkv.weight') == \
        'layers.0.attn.qkv.weight'

    class Wrapped(nn.Module):  # parameter names as an FSDP-wrapped student shows them
        def __init__(self, inner):
            super().__init__()
            self._fsdp_wrapped_module = inner

    student = nn.Linear(3, 3)
    t = EMATeacher(student, momentum=0.5, end_momentum=0.5, schedule='constant')
    with torch.no_grad():
        student.weight.add_(1.0)
    before = t.module.weight.clone()
    t.update_parameters(Wrapped(student))
    assert torch.allclose(t.module.weight, 0.5 * before + 0.5 * student.weight)


def test_update_count_is_read_once_and_again_after_a_checkpoint_load():
    """The momentum step comes from a host copy of `steps` (no GPU sync per update), which a
    loaded checkpoint refreshes, so a resumed schedule continues where it stopped."""
    student = nn.Linear(2, 2)
    t = EMATeacher(student, momentum=0.5, end_momentum=1.0)
    t.set_schedule(10)
    t.update_parameters(student)
    t.update_parameters(student)
    assert int(t.steps) == 2 and t._update_count() == 2
    resumed = EMATeacher(nn.Linear(2, 2), momentum=0.5, end_momentum=1.0)
    resumed.set_schedule(10)
    resumed.update_parameters(student)  # host copy now 1
    resumed.load_state_dict(t.state_dict())
    assert resumed._update_count() == 2
    before = resumed.module.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    resumed.update_parameters(student)
    m = resumed.momentum_at(2)
    assert torch.allclose(resumed.module.weight, m * before + (1 - m) * student.weight)
    assert int(resumed.steps) == 3 and resumed._update_count() == 3
