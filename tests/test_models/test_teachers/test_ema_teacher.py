import math

import pytest
import torch
from torch import nn

from pcae_mm.models.teachers import EMATeacher


def test_cosine_schedule_endpoints_and_midpoint():
    t = EMATeacher(nn.Linear(2, 2), momentum=0.9999, end_momentum=1.0)
    t.total_updates = 100
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


@pytest.mark.parametrize('kwargs', [dict(momentum=1.5), dict(schedule='linear'),
                                    dict(update_by='step')])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EMATeacher(nn.Linear(2, 2), **kwargs)
