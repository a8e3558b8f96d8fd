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


# --------------------------------------------------------------------------------------------
# --resume with another shape (issue 25): iteration-counted state converted to the new
# number of iterations per epoch
# --------------------------------------------------------------------------------------------
def _scaler(old: int, new: int):
    def scale(x: int) -> int:
        return x * new // old if (x * new) % old == 0 else int(round(x * new / old))
    return scale


def rescale_scheduler_state(state: dict, old_ipe: int, new_ipe: int) -> bool:
    """Convert one iteration-based parameter scheduler's state dict (mmengine's
    ``_ParamScheduler.state_dict()``: ``begin``, ``end``, ``last_step``, ``_global_step`` and
    the type's own lengths) from ``old_ipe`` to ``new_ipe`` iterations per epoch, in place.

    Boundaries and lengths are scaled (exact for schedules converted from epochs:
    ``convert_to_iter_based``); the position (``last_step``) is derived from the scaled global
    step as mmengine's ``step()`` counts it, so the schedule continues at the same fraction of
    its length. Epoch-based schedulers and open ends (``end`` = INF) are left alone.

    Returns:
        bool: whether anything was changed.
    """
    if state.get('by_epoch', False) or old_ipe == new_ipe:
        return False
    scale = _scaler(old_ipe, new_ipe)
    begin, end = int(state.get('begin', 0)), int(state.get('end', _INF))
    new_begin = scale(begin)
    new_end = end if end >= _INF else scale(end)
    if 'T_max' in state and isinstance(state['T_max'], int):
        state['T_max'] = (new_end - new_begin if state['T_max'] == end - begin
                          else max(scale(state['T_max']), 1))
    if 'total_iters' in state and isinstance(state['total_iters'], int):
        state['total_iters'] = (new_end - new_begin - 1 if state['total_iters'] == end - begin - 1
                                else max(scale(state['total_iters']), 1))
    for key in ('step_size', 'total_steps'):
        if isinstance(state.get(key), int):
            state[key] = max(scale(state[key]), 1)
    if 'milestones' in state:
        milestones = state['milestones']
        converted = type(milestones)()
        for k, v in milestones.items():
            converted[scale(int(k))] = v
        state['milestones'] = converted
    if isinstance(state.get('_global_step'), int):
        step = scale(state['_global_step'])
        state['_global_step'] = step
        state['last_step'] = min(max(step, new_begin - 1), new_end - 1) - new_begin
    state['begin'], state['end'] = new_begin, new_end
    return True


def rescale_checkpoint(checkpoint: dict, old_ipe: int, new_ipe: int,
                       ema_step_keys=()) -> list:
    """Convert what a checkpoint counts in iterations to ``new_ipe`` iterations per epoch, in
    place, before mmengine's ``resume`` reads it: the loop's iteration counter
    (``meta.iter``), the iteration-based parameter schedulers, the run's recorded length
    (:data:`RUN_LENGTH_KEY`, the EMA and progressive schedules) and the EMA teachers' update
    counters (``ema_step_keys``: state-dict keys of per-iteration ``steps`` buffers).

    Returns:
        list: what was converted, for the log.
    """
    scale = _scaler(old_ipe, new_ipe)
    done = []
    meta = checkpoint.setdefault('meta', {})
    if isinstance(meta.get('iter'), int):
        epoch = meta.get('epoch')
        old_iter = meta['iter']
        meta['iter'] = (int(epoch) * new_ipe if isinstance(epoch, int)
                        and old_iter == epoch * old_ipe else scale(old_iter))
        done.append(f'iteration counter {old_iter} -> {meta["iter"]}')
    scheds = checkpoint.get('param_schedulers')
    groups = scheds.values() if isinstance(scheds, dict) else [scheds or []]
    n = sum(rescale_scheduler_state(s, old_ipe, new_ipe)
            for group in groups for s in group if isinstance(s, dict))
    if n:
        done.append(f'{n} iteration-based parameter scheduler(s)')
    info = (checkpoint.get('message_hub') or {}).get('runtime_info') or {}
    recorded = info.get(RUN_LENGTH_KEY)
    if isinstance(recorded, dict) and 'iters' in recorded:
        old = int(recorded['iters'])
        epochs = int(recorded.get('epochs', 0))
        recorded['iters'] = epochs * new_ipe if old == epochs * old_ipe else scale(old)
        done.append(f'run length {old} -> {recorded["iters"]} iterations (EMA / progressive '
                    'schedules)')
    state = checkpoint.get('state_dict') or {}
    for key in ema_step_keys:
        value = state.get(key)
        if value is not None and hasattr(value, 'fill_'):
            old = int(value)
            value.fill_(scale(old))
            done.append(f'{key} {old} -> {int(value)}')
    return done
