"""The EMA machinery under :class:`EMATeacher`: momentum schedule, update, step-0 init."""
import logging
import math
from numbers import Real
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.model import BaseAveragedModel
from torch import Tensor, nn

#: Name segments that DDP / FSDP / activation-checkpoint wrappers insert into parameter names.
WRAPPER_SEGMENTS = ('_fsdp_wrapped_module', '_checkpoint_wrapped_module')
SCHEDULES = ('cosine', 'constant')
INITS = ('student', 'random')


def horizon_momentum(horizon: float, total_updates: int) -> float:
    """The momentum whose EMA time scale is ``horizon`` of a run of ``total_updates`` updates.

    An EMA ``teacher = m * teacher + (1 - m) * student`` averages the student over about
    ``1 / (1 - m)`` updates (its horizon). Keeping that horizon the same FRACTION ``h`` of the
    run at any run length ``K`` gives::

        m = 1 - 1 / (h * K)

    e.g. the PCAE recipe's 0.9999 (a 10,000-update horizon) over its 93,900 iterations is
    h = 0.1065; the same h over a 400-iteration run is m = 1 - 1 / 42.6 = 0.9765. A horizon
    shorter than one update (``h * K < 1``) cannot be resolved: m = 0, the teacher copies the
    student at every update.
    """
    return max(0.0, 1.0 - 1.0 / (horizon * total_updates))


def momentum_horizon(momentum: float, total_updates: int) -> float:
    """The inverse of :func:`horizon_momentum`: the share of a ``total_updates``-update run that
    ``momentum``'s time scale ``1 / (1 - m)`` spans (``inf`` for m = 1)."""
    return math.inf if momentum >= 1.0 else 1.0 / ((1.0 - momentum) * total_updates)


def ema_settings(teacher: Optional[dict], momentum: float, end_momentum: float,
                 **defaults) -> dict:
    """A method's teacher settings over its defaults: the default ``momentum`` /
    ``end_momentum`` apply unless the settings give that end as a momentum or a horizon."""
    teacher = dict(defaults, **(teacher or {}))
    if 'horizon' not in teacher:
        teacher.setdefault('momentum', momentum)
    if 'end_horizon' not in teacher:
        teacher.setdefault('end_momentum', end_momentum)
    return teacher


def canonical_name(name: str) -> str:
    """Parameter name without the segments wrappers insert (:data:`WRAPPER_SEGMENTS`)."""
    return '.'.join(p for p in name.split('.') if p not in WRAPPER_SEGMENTS)


def check_momentum_or_horizon(m_name: str, momentum: Optional[float], h_name: str,
                              horizon: Optional[float]) -> None:
    """At most one of a momentum in [0, 1] and a horizon > 0 (a share of the run), else a
    ValueError naming the fix."""
    if momentum is not None and horizon is not None:
        raise ValueError(
            f'EMA teacher: {m_name}={momentum} and {h_name}={horizon} both given; the '
            f'{h_name} (a share of the run) derives {m_name}: set {m_name}=None to use it, '
            f'or drop {h_name}')
    if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, Real)
                                 or not 0.0 <= momentum <= 1.0):
        raise ValueError(f'EMA teacher {m_name} must be in [0, 1], got {momentum!r}')
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, Real)
                                or not 0.0 < horizon < math.inf):
        raise ValueError(
            f'EMA teacher {h_name} must be a share of the run > 0 (e.g. 0.1 = a tenth of its '
            f'updates), got {horizon!r}')


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

    Time scale as a share of the run: ``horizon`` (instead of ``momentum``) and ``end_horizon``
    (instead of ``end_momentum``) give the EMA's horizon ``1 / (1 - m)`` as a fraction of the
    run's ``K`` updates, and :meth:`set_schedule` derives ``m = 1 - 1 / (horizon * K)``
    (:func:`horizon_momentum`). A run of any length is then a scaled copy of the recipe's: with
    the end at 1.0 every point of the cosine schedule has ``1 - m`` proportional to ``1 / K``.
    The full recipes give the literal momenta (equivalent at their own length); the tiny configs
    give the recipe's fractions, e.g. PCAE ``horizon=0.1065`` (0.9999 over 93,900 iterations),
    SdAE ``horizon=0.0833, end_horizon=0.333`` (0.96 -> 0.99 over 300 per-epoch updates).

    The copy is the student's (``module``). :meth:`reset` sets its step-0 state, right after the
    algorithm's weight initialisation: with ``init='student'`` (default, our correction)
    :meth:`sync` makes it equal to the student whatever the init or pretrained weights; with
    ``init='random'`` it gets its own random initialisation (:func:`random_vit_init_`: the
    SdAE authors' teacher, incl. a random position embedding that the EMA then pulls toward the
    student's) and only the EMA brings it toward the student. The copy always stays in eval mode
    (no dropout, no drop path) and needs no gradient.

    Args:
        model (nn.Module): The student network to copy (a :class:`MIMViT`).
        momentum (float, optional): Momentum at the first update. Defaults to 0.9999, or to
            the one derived from ``horizon`` when that is given.
        end_momentum (float, optional): Momentum at the last update. Defaults to 1.0, or to
            the one derived from ``end_horizon`` when that is given.
        horizon (float, optional): The first update's time scale ``1 / (1 - m)`` as a fraction
            of the run's updates (> 0), instead of ``momentum``. Defaults to None.
        end_horizon (float, optional): The same for the last update, instead of
            ``end_momentum``. Defaults to None.
        schedule (str): ``'cosine'`` or ``'constant'``. Defaults to ``'cosine'``.
        update_by (str): ``'iter'`` or ``'epoch'``: when the hook updates. Defaults to ``'iter'``.
        interval (int): Update every ``interval`` iterations or epochs. Defaults to 1.
        init (str): Step-0 teacher: ``'student'`` (a copy) or ``'random'`` (own random init,
            as the official SdAE code). Defaults to ``'student'``.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: Optional[float] = None,
                 end_momentum: Optional[float] = None,
                 schedule: str = 'cosine',
                 update_by: str = 'iter',
                 interval: int = 1,
                 init: str = 'student',
                 horizon: Optional[float] = None,
                 end_horizon: Optional[float] = None) -> None:
        if momentum is None and horizon is None:
            momentum = 0.9999
        if end_momentum is None and end_horizon is None:
            end_momentum = 1.0
        for m_name, m, h_name, h in (('momentum', momentum, 'horizon', horizon),
                                     ('end_momentum', end_momentum, 'end_horizon', end_horizon)):
            check_momentum_or_horizon(m_name, m, h_name, h)
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
        self.horizon = horizon
        self.end_horizon = end_horizon
        self.total_updates: Optional[int] = None
        self.module.eval()

    def train(self, mode: bool = True) -> 'EMAModel':
        """Keep the copy in eval mode whatever the runner asks."""
        super().train(False)
        return self

    def set_schedule(self, total_updates: int) -> None:
        """Set the schedule's length: the number of updates ``K`` of the whole run, and derive
        the momenta given as horizons (:func:`horizon_momentum`)."""
        if int(total_updates) < 1:
            raise ValueError(f'EMA schedule length must be >= 1 update, got {total_updates}')
        K = self.total_updates = int(total_updates)
        for h_name, m_name in (('horizon', 'momentum'), ('end_horizon', 'end_momentum')):
            h = getattr(self, h_name)
            if h is None:
                continue
            setattr(self, m_name, horizon_momentum(h, K))
            if h * K < 1:
                print_log(
                    f'EMA teacher: {h_name}={h} of a {K}-update run is {h * K:.2f} updates, '
                    f'shorter than one update: {m_name} 0 (the teacher copies the student at '
                    "every update). More updates resolve it (update_by='iter' instead of "
                    "'epoch', or a longer run).", logger='current', level=logging.WARNING)

    def describe(self) -> str:
        """The schedule in words, e.g. ``'momentum 0.9765 -> 1 (cosine, per iter; horizon
        10.65% of 400 updates)'``; before :meth:`set_schedule` the horizons only."""
        def fmt(m, h):
            return f'{m:.4g}' if m is not None else f'(horizon {h:g})'
        text = (f'momentum {fmt(self.momentum, self.horizon)} -> '
                f'{fmt(self.end_momentum, self.end_horizon)} ({self.schedule}, per '
                f'{self.update_by}')
        if self.horizon is not None and self.total_updates is not None:
            text += f'; horizon {self.horizon:.2%} of {self.total_updates} updates'
        elif self.total_updates is not None:
            h = momentum_horizon(self.momentum, self.total_updates)
            text += (f'; horizon {h:.2%} of {self.total_updates} updates'
                     if math.isfinite(h) else '')
        return text + ')'

    def momentum_at(self, step: int) -> float:
        """Momentum ``m`` used by update number ``step`` (0-based)."""
        if self.total_updates is None and (self.schedule != 'constant' or self.momentum is None):
            raise RuntimeError(
                'EMATeacher.total_updates is unset: add '
                "custom_hooks=[dict(type='EMATeacherHook')] to the config (it sets the schedule "
                'length from max_iters / max_epochs and updates the teacher)')
        if self.schedule == 'constant':
            return self.momentum
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
