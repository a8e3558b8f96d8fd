"""The EMA machinery under :class:`EMATeacher`: momentum schedule, update, step-0 init."""
import math
from typing import Optional

import torch
from mmengine.model import BaseAveragedModel
from torch import Tensor, nn

#: Name segments that DDP / FSDP / activation-checkpoint wrappers insert into parameter names.
WRAPPER_SEGMENTS = ('_fsdp_wrapped_module', '_checkpoint_wrapped_module')
SCHEDULES = ('cosine', 'constant')
INITS = ('student', 'random')


def canonical_name(name: str) -> str:
    """Parameter name without the segments wrappers insert (:data:`WRAPPER_SEGMENTS`)."""
    return '.'.join(p for p in name.split('.') if p not in WRAPPER_SEGMENTS)


@torch.no_grad()
def random_vit_init_(module: nn.Module) -> None:
    """Initialise a ViT from scratch the way the SdAE authors' teacher is (timm 0.3.2's
    ``VisionTransformer``, AbrahamYabo/SdAE ``models_teacher.py``): every ``nn.Linear`` weight
    truncated normal (std 0.02, cut at +-2) with zero bias, LayerNorm 1 / 0, convolutions
    PyTorch's default, ``cls_token`` and a LEARNED-style ``pos_embed`` truncated normal
    (std 0.02) -- no sin-cos. Raises ValueError for any parameter it does not know.
    """
    done = set()
    for name, m in module.named_modules():
        prefix = f'{name}.' if name else ''
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=.02, a=-2., b=2.)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.conv._ConvNd):
            m.reset_parameters()
        else:
            for pname in ('cls_token', 'pos_embed'):
                p = getattr(m, pname, None)
                if isinstance(p, nn.Parameter):
                    nn.init.trunc_normal_(p, std=.02, a=-2., b=2.)
                    done.add(prefix + pname)
            continue
        done.update(prefix + n for n, _ in m.named_parameters(recurse=False))
    unknown = [n for n, _ in module.named_parameters() if n not in done]
    if unknown:
        raise ValueError(f"init='random' does not know how to initialise {unknown[:5]}")


class EMAModel(BaseAveragedModel):
    """Exponential-moving-average copy of a student network, never trained by gradients.

    Momentum convention (teacher style, the opposite of mmengine's ``ExponentialMovingAverage``):
    ``teacher = m * teacher + (1 - m) * student`` where ``m`` is close to 1. With the cosine
    schedule, ``m`` goes from ``momentum`` at the first update to ``end_momentum`` at the last::

        m(k) = end - (end - momentum) * (cos(pi * k / K) + 1) / 2

    ``K`` (``total_updates``) is given to :meth:`set_schedule` by
    :class:`~pcae_mm.engine.hooks.EMATeacherHook` from the runner's ``max_iters``
    (``update_by='iter'``) or ``max_epochs`` (``update_by='epoch'``). The
    update counter lives in the ``steps`` buffer, so it is saved with the checkpoint and a resumed
    run continues the schedule where it stopped.

    The copy is the student's (``module``). :meth:`reset` sets its step-0 state, right after the
    algorithm's weight initialisation: with ``init='student'`` (default, our correction)
    :meth:`sync` makes it equal to the student whatever the init or pretrained weights; with
    ``init='random'`` it gets its own random initialisation (:func:`random_vit_init_`: the
    SdAE authors' teacher, incl. a random position embedding that the EMA then pulls toward the
    student's) and only the EMA brings it toward the student. The copy always stays in eval mode
    (no dropout, no drop path) and needs no gradient.

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        momentum (float): Momentum at the first update. Defaults to 0.9999.
        end_momentum (float): Momentum at the last update. Defaults to 1.0.
        schedule (str): ``'cosine'`` or ``'constant'``. Defaults to ``'cosine'``.
        update_by (str): ``'iter'`` or ``'epoch'``: when the hook updates. Defaults to ``'iter'``.
        interval (int): Update every ``interval`` iterations or epochs. Defaults to 1.
        init (str): Step-0 teacher: ``'student'`` (a copy) or ``'random'`` (own random init,
            as the official SdAE code). Defaults to ``'student'``.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.9999,
                 end_momentum: float = 1.0,
                 schedule: str = 'cosine',
                 update_by: str = 'iter',
                 interval: int = 1,
                 init: str = 'student') -> None:
        for name, value in (('momentum', momentum), ('end_momentum', end_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'EMA teacher {name} must be in [0, 1], got {value}')
        if schedule not in SCHEDULES:
            raise ValueError(f'EMA schedule must be one of {SCHEDULES}, got {schedule!r}')
        if init not in INITS:
            raise ValueError(f'EMA teacher init must be one of {INITS}, got {init!r}')
        if update_by not in ('iter', 'epoch'):
            raise ValueError(f"EMA update_by must be 'iter' or 'epoch', got {update_by!r}")
        super().__init__(model, interval=1, update_buffers=False)
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.schedule = schedule
        self.update_by = update_by
        self.update_interval = interval
        self.init = init
        self.total_updates: Optional[int] = None
        self.module.eval()

    def train(self, mode: bool = True) -> 'EMAModel':
        """Keep the copy in eval mode whatever the runner asks."""
        super().train(False)
        return self

    def set_schedule(self, total_updates: int) -> None:
        """Set the schedule's length: the number of updates ``K`` of the whole run."""
        if int(total_updates) < 1:
            raise ValueError(f'EMA schedule length must be >= 1 update, got {total_updates}')
        self.total_updates = int(total_updates)

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

    def _update_count(self) -> int:
        """Updates done so far (the ``steps`` buffer), read from a host-side copy.

        ``int(self.steps)`` on a GPU buffer waits for the GPU to drain, once per iteration;
        the copy reads the buffer once, and again after a checkpoint was loaded into it.
        """
        if getattr(self, '_host_steps', None) is None:
            self._host_steps = int(self.steps)
        return self._host_steps

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_steps = None  # ``steps`` may have changed: read it again at the next update

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """One EMA step toward ``model``. The first step averages too (no re-copy)."""
        src = {canonical_name(k): p for k, p in model.named_parameters()}
        missing = set(self.avg_parameters) - set(src)
        if missing:
            raise KeyError(f'student lacks teacher parameters {sorted(missing)[:5]}')
        keys = [k for k, p in self.avg_parameters.items() if p.dtype.is_floating_point]
        avg = [self.avg_parameters[k].data for k in keys]
        source = [src[k].data.to(a.device) for k, a in zip(keys, avg)]
        m = self.momentum_at(self._update_count())  # no host-device sync
        # one fused multi-tensor update instead of a Python loop over ~150 tensors
        torch._foreach_mul_(avg, m)
        torch._foreach_add_(avg, source, alpha=1 - m)
        for b_avg, b_src in zip(self.module.buffers(), model.buffers()):
            b_avg.data.copy_(b_src.data.to(b_avg.device))
        self.steps += 1
        self._host_steps += 1

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Step-0 teacher: a copy of ``model`` (``init='student'``) or an independent random
        init (``init='random'``, :func:`random_vit_init_`)."""
        if self.init == 'student':
            self.sync(model)
        else:
            random_vit_init_(self.module)

    @torch.no_grad()
    def sync(self, model: nn.Module) -> None:
        """Copy every parameter and buffer of ``model`` into the teacher (step-0 init)."""
        self.module.load_state_dict(model.state_dict())
