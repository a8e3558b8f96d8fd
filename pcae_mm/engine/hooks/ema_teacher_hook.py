"""Hook that drives every :class:`EMATeacher` of the model."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.teachers.ema_teacher import EMATeacher


def find_teachers(model) -> List[EMATeacher]:
    """Every EMATeacher inside ``model`` (unwrapping DDP / FSDP wrappers)."""
    if is_model_wrapper(model):
        model = model.module
    return [m for m in model.modules() if isinstance(m, EMATeacher)]


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Set the EMA schedule length and update the teacher after each iteration or epoch.

    The model must define ``momentum_update()`` (all pcae_mm teacher-student algorithms do); the
    teacher's own ``update_by`` decides whether updates happen per iteration or per epoch, and
    its ``update_interval`` how often.
    """

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        teachers = find_teachers(runner.model)
        if not teachers:
            raise RuntimeError('EMATeacherHook is configured but the model has no EMATeacher')
        for t in teachers:
            total = runner.max_iters if t.update_by == 'iter' else runner.max_epochs
            t.total_updates = max(total // t.update_interval, 1)

    def _update(self, runner, by: str, count: int) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        teachers = [t for t in find_teachers(model) if t.update_by == by]
        if teachers and count % teachers[0].update_interval == 0:
            model.momentum_update()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._update(runner, 'iter', runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        self._update(runner, 'epoch', runner.epoch + 1)
