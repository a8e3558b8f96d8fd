"""Stop a diverged run with a clear error instead of training on NaNs (issue 15)."""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
from mmpretrain.registry import HOOKS

from .optimizer_steps import StepWatch


class DivergenceError(RuntimeError):
    """Training diverged: the loss or the gradient norm stayed non-finite."""


def _as_float(value) -> float:
    if torch.is_tensor(value):
        return float(value.detach().float().mean())
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def grad_norm(params) -> torch.Tensor:
    """Total L2 norm of the gradients of ``params`` (a 0-d tensor, inf/nan when any is)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack([n.float().to(norms[0].device) for n in norms]))


@HOOKS.register_module()
class DivergenceGuardHook(Hook):
    """Stop training after ``patience`` consecutive steps with a non-finite loss or gradient.

    On every iteration the hook reads the loss terms the model returned. Without AMP it also
    checks the gradient norm before the optimizer steps and **skips the update** when it is
    not finite (the weights stay finite; like AMP's loss scaler does), so a single bad batch
    does not destroy the run. With AMP (``AmpOptimWrapper``) the loss scaler already skips
    steps whose gradients overflow: those skipped steps are not counted as divergence, but
    ``max_amp_skips`` consecutive skips (the scale collapsing) are. A skipped step is one in
    which the wrapper was due to update and the optimizer did not step
    (:class:`~.optimizer_steps.StepWatch`: a host-side count of optimizer steps, no GPU sync;
    also right at the first iteration, where there is no earlier scale to compare with).

    After ``patience`` consecutive bad steps the hook raises :class:`DivergenceError` naming the
    iteration, the epoch, every loss term of the last step and the last checkpoint written;
    ``SafeCheckpointHook`` never writes a checkpoint with non-finite weights, so that checkpoint
    is finite.

    Args:
        patience (int): Consecutive bad steps before stopping. Defaults to 3.
        skip_nonfinite_updates (bool): Without AMP, skip the optimizer step when the gradient
            norm is not finite. Defaults to True.
        max_amp_skips (int): Consecutive AMP loss-scaler skips before stopping. Defaults to 100.
    """

    priority = 'HIGH'  # after_train_iter: before the checkpoint hook writes a file

    def __init__(self, patience: int = 3, skip_nonfinite_updates: bool = True,
                 max_amp_skips: int = 100) -> None:
        if patience < 1:
            raise ValueError(f'DivergenceGuardHook patience must be >= 1, got {patience}')
        self.patience = patience
        self.skip_nonfinite_updates = skip_nonfinite_updates
        self.max_amp_skips = max_amp_skips
        self.bad_steps = 0
        self.amp_skips = 0
        self.skipped_updates = 0
        self._last_grad_norm: Optional[float] = None
        self._watch = StepWatch()

    # ---------------------------------------------------------------- optimizer wrapping
    def _wrappers(self, runner):
        wrapper = getattr(runner, 'optim_wrapper', None)
        if isinstance(wrapper, OptimWrapperDict):
            return list(wrapper.values())
        return [wrapper] if wrapper is not None else []

    def before_train(self, runner) -> None:
        for wrapper in self._wrappers(runner):
            if isinstance(wrapper, AmpOptimWrapper) or not self.skip_nonfinite_updates:
                continue
            if getattr(wrapper, '_divergence_guarded', False):
                continue
            wrapper.step = self._guarded_step(wrapper, wrapper.step)
            wrapper._divergence_guarded = True

    def _guarded_step(self, wrapper, step):
        def guarded_step(**kwargs):
            params = [p for g in wrapper.optimizer.param_groups for p in g['params']]
            norm = grad_norm(params)
            finite = bool(torch.isfinite(norm))
            self._last_grad_norm = float(norm)
            if not finite:
                self.skipped_updates += 1
                return None  # update_params() still zeroes the gradients
            return step(**kwargs)

        return guarded_step

    # ---------------------------------------------------------------------- checks
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._watch.start(getattr(runner, 'optim_wrapper', None))

    def _amp_skipped(self, runner) -> bool:
        """True when an AMP loss scaler skipped this iteration's optimizer step."""
        return self._watch.skipped_by_scaler(getattr(runner, 'optim_wrapper', None))

    def _scale(self, runner) -> str:
        """The loss scale now, for the error message (read only when stopping)."""
        for wrapper in self._wrappers(runner):
            scaler = getattr(wrapper, 'loss_scaler', None)
            if scaler is not None and hasattr(scaler, 'get_scale'):
                return f'{float(scaler.get_scale()):g}'
        return '?'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        losses = {k: _as_float(v) for k, v in (outputs or {}).items() if 'loss' in k}
        loss_ok = all(math.isfinite(v) for v in losses.values())
        grad_ok = self._last_grad_norm is None or math.isfinite(self._last_grad_norm)
        if self._amp_skipped(runner):
            self.amp_skips += 1
            if self.amp_skips >= self.max_amp_skips:
                self._stop(runner, losses, f'the AMP loss scaler skipped {self.amp_skips} '
                           f'consecutive steps (scale now {self._scale(runner)})')
            self._last_grad_norm = None
            return  # a scaler-skipped step is not counted as divergence
        self.amp_skips = 0
        if loss_ok and grad_ok:
            self.bad_steps = 0
        else:
            self.bad_steps += 1
            what = 'loss' if not loss_ok else 'gradient norm'
            runner.logger.warning(
                f'non-finite {what} at iteration {runner.iter + 1} '
                f'({self._describe(losses)}); {self.bad_steps}/{self.patience} consecutive bad '
                'steps' + ('' if grad_ok or not self.skip_nonfinite_updates
                           else ', optimizer update skipped'))
            if self.bad_steps >= self.patience:
                self._stop(runner, losses, f'{self.bad_steps} consecutive steps with a '
                           f'non-finite {what}')
        self._last_grad_norm = None

    def _describe(self, losses: Dict[str, float]) -> str:
        parts = [f'{k}={v:.6g}' for k, v in losses.items()]
        if self._last_grad_norm is not None:
            parts.append(f'grad_norm={self._last_grad_norm:.6g}')
        return ', '.join(parts) or 'no loss terms'

    def _stop(self, runner, losses: Dict[str, float], why: str) -> None:
        last = runner.message_hub.get_info('last_ckpt') if hasattr(runner, 'message_hub') else None
        epoch = f', epoch {runner.epoch + 1}' if getattr(runner, 'max_epochs', 1) > 1 else ''
        raise DivergenceError(
            f'training diverged at iteration {runner.iter + 1}{epoch}: {why}. Last step: '
            f'{self._describe(losses)}. '
            + (f'The last finite checkpoint is {last}; ' if last else
               'No checkpoint was written yet (nothing to resume from); ')
            + 'lower the learning rate (optim_wrapper.optimizer.lr), add gradient clipping '
            '(optim_wrapper.clip_grad=dict(max_norm=3.0)) or check the data, then '
            + (f'resume from it (--resume {last}). ' if last else
               'start the run again (with --overwrite if its work dir holds checkpoints). ')
            + 'Tune this check with default_hooks.divergence_guard.patience.')
