"""The length of a run's schedule, recorded once so that a resumed run keeps it (issue 15)."""
import math
from typing import Tuple

#: message hub runtime-info key (saved in every checkpoint, restored by --resume)
RUN_LENGTH_KEY = 'pcae_mm_run_length'
_INF = 10**8  # param schedulers without an end use mmengine's INF (1e9)


def _schedulers(runner) -> list:
    scheds = getattr(runner, 'param_schedulers', None)
    if scheds is None:
        return []
    if isinstance(scheds, dict):
        return [s for group in scheds.values() for s in group]
    return [s for s in scheds if hasattr(s, 'end')]


def planned_length(runner) -> Tuple[int, int]:
    """``(iters, epochs)`` the run's schedule spans: the longer of the train loop and the
    parameter schedulers' last ``end``.

    So a run stopped early by ``--cfg-options train_cfg.max_epochs=2`` under a 4-epoch
    learning-rate schedule keeps the 4-epoch EMA / progressive schedules, and its epoch 2
    equals epoch 2 of the full run.
    """
    iters = int(getattr(runner, 'max_iters', 0) or 0)
    epochs = int(getattr(runner, 'max_epochs', 0) or 0)
    loader = getattr(runner, 'train_dataloader', None)
    try:
        per_epoch = len(loader) if loader is not None else 0
    except TypeError:
        per_epoch = 0
    if not per_epoch and epochs:
        per_epoch = max(iters // max(epochs, 1), 1)
    for sched in _schedulers(runner):
        end = getattr(sched, 'end', None)
        if end is None or end >= _INF:
            continue
        if getattr(sched, 'by_epoch', False):
            epochs = max(epochs, int(end))
            iters = max(iters, int(end) * per_epoch)
        else:
            iters = max(iters, int(end))
            if per_epoch:
                epochs = max(epochs, math.ceil(int(end) / per_epoch))
    return iters, epochs


def run_length(runner) -> Tuple[int, int]:
    """``(iters, epochs)`` of the run: recorded by its first invocation, kept by resumes.

    The first call of a run stores :func:`planned_length` in the message hub (saved in every
    checkpoint); a resumed run reads it back, so its schedules keep the length the run
    started with whatever ``max_epochs`` the resuming command sets (with a warning when they
    differ).
    """
    planned = planned_length(runner)
    hub = getattr(runner, 'message_hub', None)
    if hub is None:
        return planned
    recorded = hub.get_info(RUN_LENGTH_KEY)
    if recorded is None:
        hub.update_info(RUN_LENGTH_KEY, dict(iters=planned[0], epochs=planned[1]))
        return planned
    length = int(recorded['iters']), int(recorded['epochs'])
    if length != planned and hasattr(runner, 'logger'):
        runner.logger.warning(
            f'this run was started with a schedule of {length[0]} iterations / {length[1]} '
            f'epochs; the EMA and progressive schedules keep it (the current config plans '
            f'{planned[0]} / {planned[1]}). Start a new run (new --work-dir) to change it.')
    return length
