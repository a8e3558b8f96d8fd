"""Warn when the model waits for its input (issue 24)."""
from typing import Optional

from mmengine.hooks import Hook, LoggerHook
from mmpretrain.registry import HOOKS

HINT = ('Raise train_dataloader.num_workers (now {workers}), use the fast CPU pipeline '
        '(LoadImageFast + RandomResizedCropTensor + RandomFlipTensor, '
        'configs/_base_/datasets/imagenet_bs512_mim.py) or decode on the GPU '
        '(GPUDecodeDataPreprocessor, configs/_base_/datasets/imagenet_bs512_mim_gpu-decode.py); '
        '`python -m tools.analysis.benchmark --data-only` measures images/s per core')


@HOOKS.register_module()
class DataTimeHook(Hook):
    """Log a warning when data loading takes more than ``threshold`` of the iteration time.

    Reads what :class:`mmengine.hooks.IterTimerHook` records every iteration (``data_time``:
    the wait for the batch, plus the runner's own work between iterations; ``time``: the whole
    iteration, wait included) and, at the end of each window of ``interval`` iterations,
    computes the share ``sum(data_time) / sum(time)`` over the window. Above ``threshold`` it
    warns with the share, the times and what to do - at most once per window, and while the
    problem lasts only in the 1st, 2nd, 4th, 8th, ... such window in a row (a long run is not
    flooded; a window back under the threshold starts the count again). The first ``skip``
    iterations of the run are left out (the workers start and fill their queues then).
    :attr:`shares` keeps every window's share.

    Args:
        threshold (float): Share of the iteration time above which to warn. Defaults to 0.05.
        interval (int, optional): Window in iterations; None = the LoggerHook's interval (one
            warning per logging window at most). Defaults to None.
        skip (int): Iterations left out at the start of training. Defaults to 1.
    """

    priority = 'LOW'  # after IterTimerHook (NORMAL) has recorded this iteration's times

    def __init__(self, threshold: float = 0.05, interval: Optional[int] = None,
                 skip: int = 1) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f'DataTimeHook threshold must be in (0, 1), got {threshold}')
        if interval is not None and interval < 1:
            raise ValueError(f'DataTimeHook interval must be >= 1, got {interval}')
        self.threshold = threshold
        self.interval = interval
        self.skip = skip
        self.warnings = 0
        self.shares = []
        self._streak = 0
        self._reset()

    def _reset(self) -> None:
        self._data = 0.0
        self._total = 0.0
        self._count = 0

    def before_train(self, runner) -> None:
        if self.interval is None:
            loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
            self.interval = loggers[0].interval if loggers else 50
        self._start = runner.iter
        self._streak = 0
        self._reset()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        hub = runner.message_hub
        if runner.iter - self._start < self.skip or 'train/data_time' not in hub.log_scalars:
            return
        self._data += float(hub.get_scalar('train/data_time').current())
        self._total += float(hub.get_scalar('train/time').current())
        self._count += 1
        if self._count < self.interval:
            return
        share = self._data / self._total if self._total > 0 else 0.0
        self.shares.append(share)
        self._streak = self._streak + 1 if share > self.threshold else 0
        if self._streak and self._streak & (self._streak - 1) == 0:  # 1, 2, 4, 8, ...
            self.warnings += 1
            workers = getattr(getattr(runner, 'train_dataloader', None), 'num_workers', '?')
            runner.logger.warning(
                f'data loading took {share:.0%} of the iteration time over the last '
                f'{self._count} iterations ({1000 * self._data / self._count:.1f} ms of '
                f'{1000 * self._total / self._count:.1f} ms per iteration; warning above '
                f'{self.threshold:.0%}, {self._streak} window(s) in a row, repeated at '
                'doubling intervals while it lasts): the model waits for its input. '
                + HINT.format(workers=workers))
        self._reset()
