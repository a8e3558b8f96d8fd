"""Did this iteration really update the weights? A host-side count of optimizer steps.

An iteration can end without an optimizer step: the AMP loss scaler skips the step whose
gradients overflowed (``GradScaler.step`` does not call ``optimizer.step()``), gradient
accumulation steps every N iterations, and ``DivergenceGuardHook`` skips non-finite updates.
Hooks that must act only after a real update (the EMA teacher, the divergence guard's AMP-skip
count) compare the count before and after the iteration.

The count is a Python integer bumped by an optimizer step post-hook
(``Optimizer.register_step_post_hook``): reading it never waits for the GPU. (The scaler has
already waited once to decide: ``GradScaler.step`` reads its inf flags with ``.item()``.)
Optimizers that take the scaler into their own fused kernel (``fused=True``:
``_step_supports_amp_scaling``) run ``step()`` even on an overflow and skip on the device;
:func:`attach` marks them inexact and :func:`stepped` then compares the loss scale before
and after (one device read per iteration).
"""
from typing import List, Optional

from mmengine.optim import OptimWrapper, OptimWrapperDict

_ATTR = '_pcae_mm_step_count'


def _wrappers(optim_wrapper) -> List[OptimWrapper]:
    if optim_wrapper is None:
        return []
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.values())
    return [optim_wrapper]


def _count(optimizer, args, kwargs) -> None:
    setattr(optimizer, _ATTR, getattr(optimizer, _ATTR, 0) + 1)


def attach(optim_wrapper) -> None:
    """Count the steps of every optimizer of ``optim_wrapper`` (a wrapper, a wrapper dict or
    None). Idempotent: each optimizer gets one post-hook."""
    for wrapper in _wrappers(optim_wrapper):
        optimizer = getattr(wrapper, 'optimizer', None)
        if optimizer is None or hasattr(optimizer, _ATTR):
            continue
        setattr(optimizer, _ATTR, 0)
        optimizer.register_step_post_hook(_count)


class StepWatch:
    """Snapshot before an iteration; :meth:`stepped` after it.

    Usage (in a hook): ``watch.start(runner.optim_wrapper)`` in ``before_train_iter``,
    ``watch.stepped(runner.optim_wrapper)`` in ``after_train_iter``.
    """

    def __init__(self) -> None:
        self._counts: Optional[list] = None
        self._scales: Optional[list] = None

    def start(self, optim_wrapper) -> None:
        attach(optim_wrapper)
        wrappers = _wrappers(optim_wrapper)
        self._counts = [getattr(w.optimizer, _ATTR, 0) for w in wrappers]
        # inexact counters (fused optimizers under a scaler): remember the scale instead
        self._scales = [_scale_tensor(w) if _inexact(w) else None for w in wrappers]

    def stepped(self, optim_wrapper) -> Optional[bool]:
        """Whether any optimizer really stepped since :meth:`start`; None when unknown (no
        optimizer wrapper, or ``start`` was not called, e.g. the benchmark's stand-in
        runner)."""
        wrappers = _wrappers(optim_wrapper)
        if self._counts is None or len(wrappers) != len(self._counts):
            return None
        for w, before, scale in zip(wrappers, self._counts, self._scales):
            if getattr(w.optimizer, _ATTR, 0) == before:
                continue
            if scale is not None and bool(_scale_tensor(w) < scale):
                continue  # fused optimizer skipped on the device: the scale backed off
            return True
        return False

    def skipped_by_scaler(self, optim_wrapper) -> bool:
        """True when an AMP loss scaler skipped this iteration's update: the wrapper was due
        to step (not mid gradient-accumulation) and no optimizer stepped."""
        stepped = self.stepped(optim_wrapper)
        if stepped is None or stepped:
            return False
        return any(
            getattr(w, 'loss_scaler', None) is not None and w.should_update()
            for w in _wrappers(optim_wrapper))


def _inexact(wrapper) -> bool:
    return (getattr(wrapper, 'loss_scaler', None) is not None
            and getattr(wrapper.optimizer, '_step_supports_amp_scaling', False))


def _scale_tensor(wrapper):
    scaler = wrapper.loss_scaler
    scale = getattr(scaler, '_scale', None)
    return scale.clone() if scale is not None else None
