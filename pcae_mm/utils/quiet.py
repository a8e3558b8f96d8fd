"""Quiet model building: known-harmless mmengine / OpenMMLab messages go to DEBUG.

Every model built outside a Runner with a log file (converters, the visualiser, the demo's
helpers) makes mmengine log one INFO record per parameter ("The value is the same before and
after calling `init_weights`"; with a log file it goes only to the file), and mmengine warns on
every run about things that are expected here (CheckpointHook's FileClient, a toolbox switching
the default scope, its own optimizer wrapper seen by the scheduler check).
:func:`quiet_model_building` lowers exactly those records to DEBUG at their source (a log-record
factory matching the emitting function, level and message), so they stay available with
``log_level='DEBUG'`` and nothing else is filtered; Python warnings of the same kind get a
message-specific ``ignore`` filter.
"""
import logging
import re
import warnings
from typing import Callable, Optional, Tuple

# Records lowered to DEBUG: (emitting function, level, message regex or None = all of them).
# mmengine's print_log is the emitting function of messages logged through it.
DEBUG_RECORDS: Tuple[Tuple[str, int, Optional[str]], ...] = (
    # BaseModule.init_weights: one record per parameter when no log file is attached
    ('_dump_init_info', logging.INFO, None),
    # CheckpointHook builds a FileClient for backward compatibility, on every run
    ('print_log', logging.WARNING, r'^"FileClient" will be deprecated in future'),
    ('print_log', logging.WARNING, r'^"HardDiskBackend" is the alias of "LocalBackend"'),
    # a toolbox (mmdet, mmseg) switching the default scope between runs in one process
    ('print_log', logging.WARNING, r'^The current default scope ".*" is not ".*", '
     r'`init_default_scope` will force set'),
)
# Python warnings that are expected here: (message regex, module regex).
IGNORED_WARNINGS: Tuple[Tuple[str, str], ...] = (
    # mmengine's OptimWrapper steps the optimizer through its own wrapper, which torch's
    # scheduler check (inherited by mmengine's ParamScheduler) cannot see
    (r'Seems like `optimizer.step\(\)` has been overridden after parameter value scheduler',
     r'mmengine\.optim\.scheduler'),
)

_installed: Optional[Callable] = None


def _matches(func: Optional[str], level: int, msg) -> bool:
    for name, lvl, pattern in DEBUG_RECORDS:
        if func == name and level == lvl and (pattern is None or re.search(pattern, str(msg))):
            return True
    return False


def quiet_model_building() -> None:
    """Install the DEBUG lowering and the warning filters (idempotent, process-wide)."""
    global _installed
    if _installed is not None and logging.getLogRecordFactory() is _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(name, level, fn, lno, msg, args, exc_info, func=None, sinfo=None, **kwargs):
        record = previous(name, level, fn, lno, msg, args, exc_info, func, sinfo, **kwargs)
        if level > logging.DEBUG and _matches(func, level, msg):
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
        return record

    logging.setLogRecordFactory(factory)
    _installed = factory
    for message, module in IGNORED_WARNINGS:
        warnings.filterwarnings('ignore', message=message, module=module)
