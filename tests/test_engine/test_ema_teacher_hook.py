from types import SimpleNamespace

import pytest
from torch import nn

from pcae_mm.engine.hooks import EMATeacherHook
from pcae_mm.models.teachers import EMATeacher


class Model(nn.Module):

    def __init__(self, update_by='iter', interval=1):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.teacher = EMATeacher(self.backbone, momentum=0.5, update_by=update_by,
                                  interval=interval)
        self.updates = 0

    def momentum_update(self):
        self.updates += 1
        self.teacher.update_parameters(self.backbone)


def runner(model, iters=10, epochs=2):
    return SimpleNamespace(model=model, max_iters=iters, max_epochs=epochs, iter=0, epoch=0)


def test_iteration_updates_and_schedule_length():
    model = Model()
    r = runner(model)
    hook = EMATeacherHook()
    hook.before_train(r)
    assert model.teacher.total_updates == 10
    for i in range(3):
        r.iter = i
        hook.after_train_iter(r, i)
    hook.after_train_epoch(r)
    assert model.updates == 3


def test_epoch_updates_with_interval():
    model = Model('epoch', interval=2)
    r = runner(model, epochs=6)
    hook = EMATeacherHook()
    hook.before_train(r)
    assert model.teacher.total_updates == 3
    hook.after_train_iter(r, 0)
    for e in range(4):
        r.epoch = e
        hook.after_train_epoch(r)
    assert model.updates == 2


def test_hook_without_teacher_raises():
    with pytest.raises(RuntimeError, match='no EMATeacher'):
        EMATeacherHook().before_train(runner(nn.Linear(2, 2)))


def test_gradient_accumulation_updates_only_after_optimizer_steps():
    model = Model()
    r = runner(model, iters=12)
    r.optim_wrapper = SimpleNamespace(_accumulative_counts=3)
    hook = EMATeacherHook()
    hook.before_train(r)
    assert model.teacher.total_updates == 4
    for i in range(12):
        r.iter = i
        hook.after_train_iter(r, i)
    assert model.updates == 4
