"""EMA teacher shared by PCAE and SdAE."""
import math
from typing import Optional

import torch
from mmengine.model import BaseAveragedModel
from torch import Tensor, nn

SCHEDULES = ('cosine', 'constant')


class EMATeacher(BaseAveragedModel):
    """Exponential-moving-average copy of a student network, never trained by gradients.

    Momentum convention (teacher style, the opposite of mmengine's ``ExponentialMovingAverage``):
    ``teacher = m * teacher + (1 - m) * student`` where ``m`` is close to 1. With the cosine
    schedule, ``m`` goes from ``momentum`` at the first update to ``end_momentum`` at the last::

        m(k) = end - (end - momentum) * (cos(pi * k / K) + 1) / 2

    ``K`` (``total_updates``) is set by :class:`~pcae_mm.engine.hooks.EMATeacherHook` from the
    runner's ``max_iters`` (``update_by='iter'``) or ``max_epochs`` (``update_by='epoch'``). The
    update counter lives in the ``steps`` buffer, so it is saved with the checkpoint and a resumed
    run continues the schedule where it stopped.

    The teacher is a copy of the student; :meth:`sync` makes it equal to the student again (done
    by the algorithms right after weight initialisation, so the teacher equals the student at
    step 0 whatever the init or pretrained weights). The copy always stays in eval mode (no
    dropout, no drop path) and needs no gradient.

    Args:
        model (nn.Module): The student network to copy.
        momentum (float): Momentum at the first update. Defaults to 0.9999.
        end_momentum (float): Momentum at the last update. Defaults to 1.0.
        schedule (str): ``'cosine'`` or ``'constant'``. Defaults to ``'cosine'``.
        update_by (str): ``'iter'`` or ``'epoch'``: when the hook updates. Defaults to ``'iter'``.
        interval (int): Update every ``interval`` iterations or epochs. Defaults to 1.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.9999,
                 end_momentum: float = 1.0,
                 schedule: str = 'cosine',
                 update_by: str = 'iter',
                 interval: int = 1) -> None:
        for name, value in (('momentum', momentum), ('end_momentum', end_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'EMA teacher {name} must be in [0, 1], got {value}')
        if schedule not in SCHEDULES:
            raise ValueError(f'EMA schedule must be one of {SCHEDULES}, got {schedule!r}')
        if update_by not in ('iter', 'epoch'):
            raise ValueError(f"EMA update_by must be 'iter' or 'epoch', got {update_by!r}")
        super().__init__(model, interval=1, update_buffers=False)
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.schedule = schedule
        self.update_by = update_by
        self.update_interval = interval
        self.total_updates: Optional[int] = None
        self.module.eval()

    def train(self, mode: bool = True) -> 'EMATeacher':
        """Keep the teacher in eval mode whatever the runner asks."""
        super().train(False)
        return self

    def momentum_at(self, step: int) -> float:
        """Momentum ``m`` used by update number ``step`` (0-based)."""
        if self.schedule == 'constant':
            return self.momentum
        if self.total_updates is None:
            raise RuntimeError(
                'EMATeacher.total_updates is unset: add '
                "custom_hooks=[dict(type='EMATeacherHook')] to the config (it sets the schedule "
                'length from max_iters / max_epochs and updates the teacher)')
        progress = min(step / max(self.total_updates, 1), 1.0)
        return self.end_momentum - (self.end_momentum - self.momentum) * (
            math.cos(math.pi * progress) + 1) / 2

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        m = self.momentum_at(int(steps))
        averaged_param.mul_(m).add_(source_param, alpha=1 - m)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """One EMA step toward ``model``. The first step averages too (no re-copy)."""
        src = dict(model.named_parameters())
        missing = set(self.avg_parameters) - set(src)
        if missing:
            raise KeyError(f'student lacks teacher parameters {sorted(missing)[:5]}')
        keys = [k for k, p in self.avg_parameters.items() if p.dtype.is_floating_point]
        avg = [self.avg_parameters[k].data for k in keys]
        source = [src[k].data.to(a.device) for k, a in zip(keys, avg)]
        m = self.momentum_at(int(self.steps))
        # one fused multi-tensor update instead of a Python loop over ~150 tensors
        torch._foreach_mul_(avg, m)
        torch._foreach_add_(avg, source, alpha=1 - m)
        for b_avg, b_src in zip(self.module.buffers(), model.buffers()):
            b_avg.data.copy_(b_src.data.to(b_avg.device))
        self.steps += 1

    @torch.no_grad()
    def sync(self, model: nn.Module) -> None:
        """Copy every parameter and buffer of ``model`` into the teacher (step-0 init)."""
        self.module.load_state_dict(model.state_dict())
