"""Where ``tools/setup_env.sh`` stands with a virtual environment, and waiting for mmcv's ops.

The set-up installs everything except mmcv's compiled ops first (``mmcv-lite``: the same
mmcv 2.1.0 code without the compiled ``mmcv._ext``), marks the environment *core*, and
compiles the ops in a background job that then installs them and marks it *full*.
Pre-training, fine-tuning and the kNN check run on *core*; mmdet / mmseg models (Mask R-CNN,
UperNet) need *full*. The state lives in files in the environment (``sys.prefix``):

=========================  =================================================================
``.pcae_mm_env``           full: the compiled ops are installed and verified
``.pcae_mm_core``          core: everything else is installed and verified
``.pcae_mm_ops``           what the job builds (``key=value`` lines: key, build_log, job_log)
``.pcae_mm_ops.lock``      locked (``flock``) by the job and its children while any lives
``.pcae_mm_ops.failed``    why the last job failed (removed when a new job starts)
``.pcae_mm_ops.pid``       the job's process group, cache key and start time
``<venv>.lock``            locked while a set-up (or the job's install) changes the env
=========================  =================================================================

Usage::

    from tools.setup_state import wait_for_mmcv_ops
    wait_for_mmcv_ops(progress=print)   # returns once mmdet / mmseg models can be built

    python tools/setup_state.py          # one line: the state of this interpreter's env
    python tools/setup_state.py --wait   # wait with progress; exit 1 if the build failed
"""
import argparse
import fcntl
import importlib
import importlib.util
import os
import os.path as osp
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

FULL = '.pcae_mm_env'
CORE = '.pcae_mm_core'
OPS = '.pcae_mm_ops'
RETRY = 'run `bash tools/setup_env.sh` to start it again'
#: What mmcv 2.1.0 takes from its compiled ops when a module is first imported, as (module,
#: ops module, name): mmcv/cnn/bricks/transformer.py re-exports MultiScaleDeformableAttention
#: when mmcv.ops imports, and mmdet imports it from there. It is the only such import-time probe
#: in what a process imports before it needs the ops (mmcv, mmengine, mmpretrain, pcae_mm; a
#: test keeps that true); everything else looks for the ops when called.
IMPORT_TIME_PROBES = (('mmcv.cnn.bricks.transformer', 'mmcv.ops.multi_scale_deform_attn',
                       'MultiScaleDeformableAttention'), )
_NINJA = re.compile(rb'^[ \t]*\[(\d+)/(\d+)\]', re.M)


class MmcvOpsError(RuntimeError):
    """The compiled ops will not come: the build failed or stopped, or no set-up made them."""


@dataclass
class OpsState:
    """One look at the set-up's files.

    ``name`` is one of: ``full`` (ops installed), ``unmanaged`` (not an env made by
    tools/setup_env.sh: nothing to wait for), ``building``, ``installing``, ``setting-up``
    (a set-up holds the env's lock), ``failed``, ``stopped`` (no job runs, none finished),
    ``not-set-up`` (the set-up never reached *core*).
    """
    name: str
    message: str
    done: Optional[int] = None
    total: Optional[int] = None
    build_log: str = ''
    job_log: str = ''

    @property
    def waiting(self) -> bool:
        return self.name in ('building', 'installing', 'setting-up')


def read_kv(path: str) -> Dict[str, str]:
    """``key=value`` lines of ``path`` ({} when it does not exist)."""
    try:
        with open(path) as f:
            return dict(line.rstrip('\n').split('=', 1) for line in f if '=' in line)
    except FileNotFoundError:
        return {}


def lock_held(path: str) -> bool:
    """Whether another process holds an ``flock`` on ``path`` (a shared probe, never created)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def build_progress(log: str) -> Optional[tuple]:
    """``(done, total)`` from the last ninja ``[N/M]`` line of a build log, or None."""
    try:
        with open(log, 'rb') as f:
            found = _NINJA.findall(f.read())
    except OSError:
        return None
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def ops_state(venv: Optional[str] = None) -> OpsState:
    """The state of ``venv`` (default: the running interpreter's environment)."""
    venv = venv or sys.prefix
    p = lambda name: osp.join(venv, name)  # noqa: E731
    if osp.exists(p(FULL)):
        return OpsState('full', 'mmcv ops installed')
    ops = read_kv(p(OPS))
    build_log, job_log = ops.get('build_log', ''), ops.get('job_log', '')
    setting_up = lock_held(venv.rstrip('/') + '.lock')
    if not osp.exists(p(CORE)):
        if setting_up:
            return OpsState('setting-up', 'waiting for mmcv ops: the environment is being set up')
        if not ops:
            # Not made by tools/setup_env.sh: whatever mmcv is installed is what there is.
            return OpsState('unmanaged', f'{venv} is not managed by tools/setup_env.sh')
        return OpsState('not-set-up', f'the set-up of {venv} did not finish: run '
                        '`bash tools/setup_env.sh`')
    if lock_held(p(OPS + '.lock')):
        wheels = ops.get('wheels', '')
        if wheels and osp.isdir(wheels) and any(n.endswith('.whl') for n in os.listdir(wheels)):
            return OpsState('installing', 'waiting for mmcv ops: installing the compiled mmcv',
                            build_log=build_log, job_log=job_log)
        progress = build_progress(build_log)
        if progress is None:
            return OpsState('building', 'waiting for mmcv ops: the build is starting',
                            build_log=build_log, job_log=job_log)
        done, total = progress
        return OpsState('building', f'waiting for mmcv ops: compiled {done} of {total}', done,
                        total, build_log, job_log)
    if osp.exists(p(FULL)):  # the job finished between the two looks
        return OpsState('full', 'mmcv ops installed')
    if osp.exists(p(OPS + '.failed')):
        with open(p(OPS + '.failed'), errors='replace') as f:
            reason = f.read().strip()
        tail = _tail(build_log, 15)
        return OpsState(
            'failed', f'the mmcv ops build failed: {reason}\n'
            + (f'last lines of {build_log}:\n{tail}' if tail else '')
            + f'Job log: {job_log}. To retry: bash tools/setup_env.sh', build_log=build_log,
            job_log=job_log)
    if setting_up:
        return OpsState('setting-up', 'waiting for mmcv ops: the environment is being set up')
    return OpsState('stopped', 'the mmcv ops build is not running and did not finish (it was '
                    f'killed, or the machine restarted; job log: {job_log}): {RETRY}.',
                    build_log=build_log, job_log=job_log)


def complete_import_time_probes() -> None:
    """In a process that imported mmcv before its compiled ops were installed, give the
    modules that looked for the ops at import (:data:`IMPORT_TIME_PROBES`) what they would have
    found. Nothing happens where those modules are not imported, already have it, or the ops
    still do not import."""
    for module, source, name in IMPORT_TIME_PROBES:
        mod = sys.modules.get(module)
        if mod is None or hasattr(mod, name):
            continue
        try:
            setattr(mod, name, getattr(importlib.import_module(source), name))
        except ImportError:
            pass


def wait_for_mmcv_ops(progress: Optional[Callable[[str], None]] = None,
                      venv: Optional[str] = None, poll: float = 2.0,
                      timeout: Optional[float] = None) -> OpsState:
    """Block until mmcv's compiled ops are installed in ``venv`` (default: this interpreter's).

    Returns at once in a *full* env and in one tools/setup_env.sh did not make. While the
    background build runs, ``progress`` gets a line such as ``waiting for mmcv ops: compiled
    41 of 77`` each time it changes. Afterwards ``import mmdet.models`` works in this process
    too: the ops are added next to the same mmcv code, and here the import caches are reset and
    the one module that looked for the ops at import gets them
    (:func:`complete_import_time_probes`).

    Raises:
        MmcvOpsError: the build failed or stopped, the set-up never finished, or ``timeout``
            seconds passed; the message says what to run.
    """
    start, last = time.monotonic(), None
    try:
        while True:
            state = ops_state(venv)
            if state.name in ('full', 'unmanaged'):
                importlib.invalidate_caches()
                complete_import_time_probes()
                return state
            if not state.waiting:
                raise MmcvOpsError(state.message)
            if timeout is not None and time.monotonic() - start > timeout:
                raise MmcvOpsError(f'gave up after {timeout:.0f} s: {state.message}')
            if progress is not None and state.message != last:
                progress(state.message)
            last = state.message
            time.sleep(poll)
    except KeyboardInterrupt:
        state = ops_state(venv)
        if state.name in ('building', 'installing'):
            print(f'\nstopped waiting; the mmcv ops build goes on in the background (log: '
                  f'{state.build_log}); `bash tools/setup_env.sh --stop` stops it.',
                  file=sys.stderr)
        raise


class LinePrinter:
    """Prints progress lines on stderr: in place on a terminal, else at most one per ``every``
    seconds (and every ``note``). Call ``close()`` when done (ends an in-place line)."""

    def __init__(self, prefix: str = '[setup_env] ', every: float = 30.0, stream=None):
        self.prefix, self.every, self.stream = prefix, every, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last, self.open = None, False

    def __call__(self, line: str) -> None:
        if self.tty:
            print(f'\r{self.prefix}{line}   ', end='', file=self.stream, flush=True)
            self.open = True
        elif self.last is None or time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(f'{self.prefix}{line}', file=self.stream, flush=True)

    def note(self, line: str) -> None:
        self.close()
        print(f'{self.prefix}{line}', file=self.stream, flush=True)

    def close(self) -> None:
        if self.open:
            print(file=self.stream, flush=True)
            self.open = False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--wait', action='store_true', help='wait until the ops are installed')
    parser.add_argument('--venv', default=None, help='the environment (default: sys.prefix)')
    parser.add_argument('--every', type=float, default=30.0,
                        help='when not on a terminal: print progress at most this often (s)')
    args = parser.parse_args(argv)
    first = ops_state(args.venv)
    if not args.wait:
        print(first.message)
        return 0
    show = LinePrinter(every=args.every)
    if first.waiting and first.build_log:
        show.note(f'mmcv ops build log: {first.build_log}')
    try:
        state = wait_for_mmcv_ops(show, args.venv)
    except MmcvOpsError as e:
        show.note(f'ERROR: {e}')
        return 1
    except KeyboardInterrupt:
        return 130
    if first.waiting:
        show.note('mmcv ops installed')
    return 0 if state.name in ('full', 'unmanaged') else 1


if __name__ == '__main__':
    sys.exit(main())
