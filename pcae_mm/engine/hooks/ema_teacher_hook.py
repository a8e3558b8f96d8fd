"""Hook that drives every :class:`EMATeacher` of the model."""
from typing import List

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...models.teachers.ema_teacher import EMATeacher
from ..fsdp import full_parameters
from .optimizer_steps import StepWatch
from .run_length import run_length


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
    its ``update_interval`` how often. With gradient accumulation
    (``optim_wrapper.accumulative_counts = N``) per-iteration updates happen only after the
    optimizer really stepped (every N iterations), and the schedule length is divided by N.
    An iteration whose update was skipped (the AMP loss scaler on a gradient overflow, the
    divergence guard on a non-finite gradient) does not move the teacher either: it is not
    counted (:class:`~.optimizer_steps.StepWatch`, a host-side count: no GPU sync).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self) -> None:
        self._watch = StepWatch()

    def before_train(self, runner) -> None:
        teachers = find_teachers(runner.model)
        if not teachers:
            raise RuntimeError('EMATeacherHook is configured but the model has no EMATeacher')
        iters, epochs = run_length(runner)  # the run's own length, kept by --resume
        for t in teachers:
            if t.update_by == 'iter':
                total = iters // (t.update_interval * self._accumulation(runner))
            else:
                total = epochs // t.update_interval
            t.set_schedule(max(total, 1))

    @staticmethod
    def _accumulation(runner) -> int:
        wrapper = getattr(runner, 'optim_wrapper', None)
        return int(getattr(wrapper, '_accumulative_counts', 1) or 1)

    def _update(self, runner, by: str, count: int) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        teachers = [t for t in find_teachers(model) if t.update_by == by]
        if teachers and count % teachers[0].update_interval == 0:
            with full_parameters(runner.model):  # FSDP: the student's whole parameters
                model.momentum_update()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._watch.start(getattr(runner, 'optim_wrapper', None))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._watch.stepped(getattr(runner, 'optim_wrapper', None)) is False:
            return  # no optimizer step this iteration: the student did not change
        steps, rest = divmod(runner.iter + 1, self._accumulation(runner))
        if rest == 0:
            self._update(runner, 'iter', steps)

    def after_train_epoch(self, runner) -> None:
        self._update(runner, 'epoch', runner.epoch + 1)
