"""tools/setup_state.py: what the set-up's files say, and the wait for mmcv's compiled ops.

The files are written here by hand, as tools/setup_env.sh writes them (its tests,
tests/test_tools/test_setup_env.py, drive the real script through every state)."""
import contextlib
import fcntl
import io
import os
import threading
import time
from pathlib import Path

import pytest

from tools.setup_state import LinePrinter, MmcvOpsError, ops_state, wait_for_mmcv_ops


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive flock on ``path`` (as the background job or a set-up does)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


@pytest.fixture
def venv(tmp_path) -> Path:
    v = tmp_path / 'venv'
    v.mkdir()
    return v


def make_core(venv: Path, tmp_path: Path) -> Path:
    """A core env whose job builds into tmp_path/wheels/key; returns the build log."""
    log = tmp_path / 'key.build.log'
    (venv / '.pcae_mm_core').write_text('stamp\n')
    (venv / '.pcae_mm_ops').write_text(
        f'key=key\nwheels={tmp_path / "wheels" / "key"}\nbuild_log={log}\n'
        f'job_log={venv / ".pcae_mm_ops.log"}\n')
    return log


def test_unmanaged_and_full(venv):
    assert ops_state(str(venv)).name == 'unmanaged'  # not made by tools/setup_env.sh
    (venv / '.pcae_mm_env').write_text('stamp\n')  # (an env made before the two stages: full)
    assert ops_state(str(venv)).name == 'full'
    assert wait_for_mmcv_ops(venv=str(venv)).name == 'full'


def test_building_shows_the_compile_progress(venv, tmp_path):
    log = make_core(venv, tmp_path)
    with locked(venv / '.pcae_mm_ops.lock'):
        state = ops_state(str(venv))
        assert state.name == 'building' and state.message.endswith('the build is starting')
        log.write_text('Running setup.py\n[1/77] c++ a.cpp\nwarning: x\n  [41/77] c++ b.cpp\n')
        state = ops_state(str(venv))
        assert state.message == 'waiting for mmcv ops: compiled 41 of 77'
        assert (state.done, state.total, state.build_log) == (41, 77, str(log))
        (tmp_path / 'wheels' / 'key').mkdir(parents=True)
        (tmp_path / 'wheels' / 'key' / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
        assert ops_state(str(venv)).name == 'installing'


def test_failed_stopped_and_not_set_up(venv, tmp_path):
    (venv / '.pcae_mm_ops').write_text('key=key\n')
    assert ops_state(str(venv)).name == 'not-set-up'
    with locked(Path(str(venv) + '.lock')):  # a set-up is running: wait for it
        assert ops_state(str(venv)).name == 'setting-up'
    log = make_core(venv, tmp_path)
    state = ops_state(str(venv))
    assert state.name == 'stopped' and 'bash tools/setup_env.sh' in state.message
    log.write_text('[3/77] c++ x.cpp\nx.cpp:1: error: boom\n')
    (venv / '.pcae_mm_ops.failed').write_text('building mmcv 2.1.0 failed after 1m00s\n')
    state = ops_state(str(venv))
    assert state.name == 'failed'
    for part in ('building mmcv 2.1.0 failed', 'x.cpp:1: error: boom', str(log),
                 'To retry: bash tools/setup_env.sh'):
        assert part in state.message
    with pytest.raises(MmcvOpsError, match='x.cpp:1: error: boom'):
        wait_for_mmcv_ops(venv=str(venv))


def test_wait_reports_each_new_line_and_returns_when_full(venv, tmp_path):
    log = make_core(venv, tmp_path)
    lines = []
    with locked(venv / '.pcae_mm_ops.lock'):

        def build():
            for i in (1, 1, 2):
                with open(log, 'a') as f:
                    f.write(f'[{i}/2] c++ op{i}.cpp\n')
                time.sleep(0.3)
            (venv / '.pcae_mm_env').write_text('stamp\n')

        worker = threading.Thread(target=build)
        worker.start()
        assert wait_for_mmcv_ops(lines.append, venv=str(venv), poll=0.05).name == 'full'
        worker.join()
    lines = [line for line in lines if 'starting' not in line]
    assert lines == ['waiting for mmcv ops: compiled 1 of 2',
                     'waiting for mmcv ops: compiled 2 of 2']


def test_wait_timeout(venv, tmp_path):
    make_core(venv, tmp_path)
    with locked(venv / '.pcae_mm_ops.lock'):
        with pytest.raises(MmcvOpsError, match='gave up after'):
            wait_for_mmcv_ops(venv=str(venv), poll=0.05, timeout=0.2)


def test_line_printer_off_a_terminal_prints_at_most_every_period():
    out = io.StringIO()
    show = LinePrinter('[x] ', every=60, stream=out)
    show('a')
    show('b')  # within the period: not printed
    show.note('done')
    assert out.getvalue() == '[x] a\n[x] done\n'
