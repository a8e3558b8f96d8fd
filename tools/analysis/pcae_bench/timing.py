"""Wall-clock timing of repeated steps (device-synchronised) and a plain progress display."""
import statistics
import sys
import time
from typing import Callable, List, Optional, TextIO

import torch


def median(values: List[float]) -> float:
    """Median of a non-empty list."""
    if not values:
        raise ValueError('median of an empty list: time at least one step')
    return float(statistics.median(values))


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock time covers them (no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class Progress:
    """One status line per event on a stream (default stderr); silent when disabled.

    Args:
        enabled (bool): Print anything at all. Defaults to True.
        stream (TextIO, optional): Defaults to ``sys.stderr``.
    """

    def __init__(self, enabled: bool = True, stream: Optional[TextIO] = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            self.stream.write(f'[{elapsed:7.1f}s] {message}\n')
            self.stream.flush()


class Timer:
    """Run ``fn`` ``warmup`` times untimed, then ``steps`` times timed.

    Args:
        device (torch.device | str): Device to synchronise before and after each timed call.
        warmup (int): Untimed calls first (allocator, autotuning, lazy optimizer state).
        steps (int): Timed calls; at least 1.
        progress (Progress, optional): Reports each call.
    """

    def __init__(self, device, warmup: int = 1, steps: int = 3,
                 progress: Optional[Progress] = None) -> None:
        if warmup < 0 or steps < 1:
            raise ValueError(f'need warmup >= 0 and steps >= 1, got warmup={warmup}, '
                             f'steps={steps}')
        self.device = torch.device(device)
        self.warmup = warmup
        self.steps = steps
        self.progress = progress or Progress(False)

    def run(self, fn: Callable[[], object], label: str = '') -> List[float]:
        """Call ``fn`` and return the ``steps`` timed durations in seconds."""
        for i in range(self.warmup):
            fn()
            self.progress(f'{label} warm-up {i + 1}/{self.warmup}')
        times = []
        for i in range(self.steps):
            synchronize(self.device)
            t0 = time.perf_counter()
            fn()
            synchronize(self.device)
            times.append(time.perf_counter() - t0)
            self.progress(f'{label} step {i + 1}/{self.steps}: {times[-1]:.3f} s')
        return times
