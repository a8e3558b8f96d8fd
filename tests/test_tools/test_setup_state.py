"""tools/setup_state.py: what the set-up's files say, and the wait for mmcv's compiled ops.

The files are written here by hand, as tools/setup_env.sh writes them (its tests,
tests/test_tools/test_setup_env.py, drive the real script through every state)."""
import contextlib
import fcntl
import io
import os
import threading
import time
import warnings
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


def _guarded_ops_imports(package_dir: str, package: str) -> set:
    """Modules of ``package`` that, at import, try importing mmcv's compiled ops (a module-level
    ``try`` / ``if`` around an import of mmcv.ops or mmcv._ext)."""
    import ast
    found = set()
    for path in Path(package_dir).rglob('*.py'):
        rel = path.relative_to(Path(package_dir).parent).with_suffix('')
        name = '.'.join(rel.parts[:-1] if rel.name == '__init__' else rel.parts)
        if name.startswith('mmcv.ops'):
            continue  # the ops themselves: never imported without them
        try:
            with warnings.catch_warnings():  # old escapes in third-party sources
                warnings.simplefilter('ignore')
                tree = ast.parse(path.read_text(errors='replace'))
        except SyntaxError:
            continue
        for stmt in tree.body:
            if not isinstance(stmt, (ast.Try, ast.If)):
                continue
            for node in ast.walk(stmt):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ''
                    mods = [('.' * node.level) + base] + [
                        f'{base}.{a.name}' for a in node.names if base == 'mmcv']
                for m in mods:
                    if m.startswith(('mmcv.ops', 'mmcv._ext')) or (
                            package == 'mmcv' and m.lstrip('.').startswith('ops')):
                        found.add(name)
    return found


def test_the_import_time_probes_are_all_known():
    """A process that imported these before mmcv's ops were installed is completed by
    complete_import_time_probes(); any other module probing the ops at import would not be."""
    import importlib.util
    from tools.setup_state import IMPORT_TIME_PROBES
    found = set()
    for package in ('mmcv', 'mmengine', 'mmpretrain'):
        spec = importlib.util.find_spec(package)
        found |= _guarded_ops_imports(spec.submodule_search_locations[0], package)
    found |= _guarded_ops_imports(str(Path(__file__).resolve().parents[2] / 'pcae_mm'), 'pcae_mm')
    assert found == {module for module, _, _ in IMPORT_TIME_PROBES}


SWAP = '''
import sys
sys.modules['mmcv._ext'] = None  # a process started on mmcv-lite, before the ops came
import pcae_mm, mmcv.cnn.bricks.transformer as t  # noqa: E401
assert not hasattr(t, 'MultiScaleDeformableAttention')
del sys.modules['mmcv._ext']  # the background job installed them meanwhile
from tools.setup_state import complete_import_time_probes, wait_for_mmcv_ops
{complete}
import mmdet.models, mmseg.models  # noqa: E401
from mmcv.ops import nms
print('ok')
'''


@pytest.mark.needs_ops
@pytest.mark.parametrize('complete', [True, False])
def test_a_process_that_started_on_mmcv_lite_builds_mmdet_models_after_the_wait(complete):
    """What the demo does in-process (Mask R-CNN after pre-training on mmcv-lite): fails without
    completing mmcv's one import-time probe, as a real cold run showed, works with it."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != 'PCAE_MM_HIDE_MMCV_OPS'}
    code = SWAP.format(complete='assert wait_for_mmcv_ops().name == "full"' if complete else '')
    proc = subprocess.run([sys.executable, '-c', code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    if complete:
        assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr
    else:
        assert "cannot import name 'MultiScaleDeformableAttention'" in proc.stderr, proc.stderr
