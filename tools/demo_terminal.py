"""The demo's terminal: one progress line per stage, each stage's full output in its own log.

:class:`Demo` runs a stage function with everything it prints (stdout, stderr, mmengine
loggers) sent to ``WORK_DIR/logs/<stage>.log`` (``--verbose``: to the terminal as well), and
draws a rich progress bar fed by :class:`ProgressHook` (iterations, latest loss, ETA). A failed
stage shows the tail of its log and raises.
"""
import argparse
import contextlib
import logging
import os
import os.path as osp
import sys
import time
from typing import Callable, Iterator, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOG_TAIL = 40  # lines of a failed stage's log shown on the terminal


def rel(path: Optional[str]) -> str:
    """A path as the user typed it from the repository root, when it is under it."""
    if not path:
        return ''
    r = osp.relpath(path, ROOT)
    return path if r.startswith('..') else r


class Tee:
    """A text stream writing to several (the terminal and a stage log with --verbose)."""

    def __init__(self, *streams) -> None:
        self.streams = streams
        self.encoding = getattr(streams[0], 'encoding', 'utf-8')

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def stage_output(log_file: str, verbose: bool) -> Iterator[None]:
    """Send everything a stage prints (stdout, stderr, mmengine loggers) to ``log_file``
    (and, with ``verbose``, to the terminal as well).

    mmengine loggers keep the stream ``sys.stdout`` was when they were made, so their console
    handlers are pointed at the file for the stage and back to the terminal afterwards.
    """
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    old_out, old_err = sys.stdout, sys.stderr
    swapped = []
    with open(log_file, 'w', buffering=1) as log:
        f = Tee(old_out, log) if verbose else log

        def redirect(to_file: bool) -> None:
            for logger in list(MMLogger._instance_dict.values()):
                for h in logger.handlers:
                    if isinstance(h, logging.FileHandler) or not isinstance(
                            h, logging.StreamHandler):
                        continue
                    if to_file and h.stream in (old_out, old_err):
                        swapped.append((h, h.stream))
                        h.setStream(f)
                    elif not to_file and h.stream is f:  # made during the stage
                        h.setStream(old_out)

        redirect(True)
        sys.stdout = sys.stderr = f
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            for h, stream in swapped:
                h.setStream(stream)
            redirect(False)


class EtaColumn(ProgressColumn):
    """'eta 0:00:12' while a task with a known length runs; nothing before or after."""

    def render(self, task) -> Text:
        if task.total is None or task.finished or not task.completed:
            return Text('')
        left = task.time_remaining
        if left is None:
            return Text('eta -:--')
        m, s = divmod(int(left), 60)
        return Text(f'eta {m}:{s:02d}')


class ProgressHook(Hook):
    """Feeds a rich progress bar: iterations, latest loss and ETA of a Runner's training."""

    priority = 'VERY_LOW'

    def __init__(self, progress: Progress, task) -> None:
        self.progress = progress
        self.task = task

    def before_train(self, runner) -> None:
        self.progress.update(self.task, total=runner.max_iters, completed=runner.iter,
                             count=f'{runner.iter}/{runner.max_iters} it')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if isinstance(loss, torch.Tensor):
            loss = loss.item()
        fields = {} if loss is None else dict(loss=f'loss {float(loss):.4f}')
        self.progress.update(self.task, completed=runner.iter + 1,
                             count=f'{runner.iter + 1}/{runner.max_iters} it', **fields)

    def before_val(self, runner) -> None:
        self.progress.update(self.task, status='validating')

    def after_val(self, runner) -> None:
        self.progress.update(self.task, status='')


class Demo:
    """Runs the stages, one terminal line each, and collects the summary rows."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.verbose = args.verbose
        # the terminal as it is now (under a stage, sys.stdout is the stage's log file)
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        if not self.console.is_terminal:  # a pipe or a file: no 80-column wrapping
            self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=120)
        self.log_dir = osp.join(args.work_dir, 'logs')
        self.rows: List[dict] = []  # the summary table: dict(stage, result, seconds, where)
        self.num_stages = 0
        self.index = 0

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def stage(self, key: str, title: str, fn: Callable[[Optional[Callable]], dict],
              before: Optional[Callable[[Callable[[str], None]], None]] = None) -> dict:
        """Run ``fn(hook_factory)`` with its output sent to ``logs/<key>.log``.

        ``hook_factory(runner)`` registers the progress bar on a Runner. On an error, the tail
        of the stage's log is printed and the exception propagates (full traceback).
        ``before(status)``, when given, runs first (the Mask R-CNN and UperNet stages wait for
        mmcv's compiled ops there): ``status(text)`` shows ``text`` on the stage's line (off a
        terminal: as a line of its own, at most every 30 s); an error it raises is printed as
        is and propagates. The stage's time starts after it.
        """
        self.index += 1
        label = f'[{self.index}/{self.num_stages}] {title}'
        log_file = osp.join(self.log_dir, f'{key}.log')
        t0 = time.time()
        if self.verbose:
            self.say(f'\n{label} (log also in {rel(log_file)})')
            if before is not None:
                self._before(label, before, None, None)
                t0 = time.time()
            with stage_output(log_file, verbose=True):
                result = fn(None)
            result['seconds'] = round(time.time() - t0, 1)
            self.say(f'{label}: done in {result["seconds"]} s')
            result['log'] = log_file
            return result
        progress = Progress(
            TextColumn('{task.description:<22}'), BarColumn(bar_width=20),
            TextColumn('{task.fields[count]:>11}'), TextColumn('{task.fields[loss]:<11}'),
            EtaColumn(), TextColumn('{task.fields[status]}'), console=self.console,
            transient=False, refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)
        task = progress.add_task(label, total=None, count='', loss='', status='')

        def add_progress(runner: Runner) -> None:
            runner.register_hook(ProgressHook(progress, task), priority='VERY_LOW')

        progress.start()
        if before is not None:
            self._before(label, before, progress, task)
            t0 = time.time()
        try:
            with stage_output(log_file, verbose=False):
                result = fn(add_progress)
        except BaseException:
            progress.update(task, status='FAILED')
            progress.stop()
            self.say(f'{label} failed after {time.time() - t0:.1f} s; last {LOG_TAIL} lines '
                     f'of {rel(log_file)}:')
            with open(log_file, errors='replace') as f:
                lines = f.read().splitlines()[-LOG_TAIL:]
            self.say('\n'.join('    ' + line for line in lines))
            raise
        result['seconds'] = round(time.time() - t0, 1)
        result['log'] = log_file
        if progress.tasks[0].total is None:  # no training loop: a full bar
            progress.update(task, total=1, completed=1)
        progress.update(task, status=f'done in {result["seconds"]} s')
        progress.stop()
        return result

    def _before(self, label: str, before: Callable, progress: Optional[Progress], task) -> None:
        """Run a stage's ``before(status)`` (see :meth:`stage`)."""
        live = progress is not None and self.console.is_terminal
        last = [None]

        def status(text: str) -> None:
            if live:
                progress.update(task, status=text)
            elif last[0] is None or time.time() - last[0] >= 30:
                last[0] = time.time()
                self.say(f'{label}: {text}')

        try:
            before(status)
        except BaseException as e:
            if progress is not None:
                progress.update(task, status='FAILED')
                progress.stop()
            self.say(f'{label}: {e}')
            raise
        if progress is not None:
            progress.update(task, status='')
