"""tools/run_tests.sh's two halves and the rules that split the suite (tests/ops_split.py).

The half without compiled ops runs with ``mmcv._ext`` hidden, in pytest and in its subprocesses;
a pytest run on a few small test files shows what each half collects and that the hiding holds.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.ops_split import OpsScan, needs_ops_name

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / 'tools' / 'setup_env.sh'

# ---- run_tests.sh's control flow, with a fake interpreter that records the pytest calls -------

FAKE_PYTEST = '''#!/bin/bash
if [[ "$1" == -c && "$2" == *nvidia.dali* && -n "${FAKE_NO_DALI:-}" ]]; then
  [[ -e "$FAKE_RECORD.dali" ]]; exit; fi      # DALI imports once the fake pip installed it
if [[ "$1" == -c ]]; then exit 0; fi          # venv_healthy's "import pip"
if [[ "$2" == pip ]]; then                    # pip install nvidia-dali-...
  echo "$*" >> "$FAKE_RECORD.pip"
  [[ -n "${FAKE_PIP_OK:-}" ]] && touch "$FAKE_RECORD.dali"; exit 0; fi
echo "${PCAE_MM_REQUIRE_DALI:-}" >> "$FAKE_RECORD.require"
echo "$* | hidden=${PCAE_MM_HIDE_MMCV_OPS:-} ${PYTHONPATH:-}" >> "$FAKE_RECORD"
n=$(wc -l < "$FAKE_RECORD")
IFS=, read -ra rcs <<< "$FAKE_PYTEST_RCS"
[[ -n "${FAKE_SLEEP:-}" ]] && sleep "$FAKE_SLEEP"
exit "${rcs[$((n - 1))]:-0}"
'''


@pytest.fixture
def fake_venv(tmp_path):
    """A venv that tools/setup_env.sh takes as current (stamp = what it wants) and whose
    python records its arguments and exits with the statuses in FAKE_PYTEST_RCS."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(FAKE_PYTEST)
    python.chmod(0o755)
    env = dict(os.environ, PCAE_MM_VENV=str(venv), FAKE_RECORD=str(tmp_path / 'calls'))
    env.pop('PYTHONPATH', None)
    env.pop('PCAE_MM_HIDE_MMCV_OPS', None)
    want = subprocess.run(['bash', '-c', f'source {SETUP}; want_stamp'], env=env,
                          capture_output=True, text=True, check=True).stdout
    (venv / '.pcae_mm_env').write_text(want)
    return env, tmp_path / 'calls'


@pytest.mark.parametrize('rcs,expected', [
    ('0,0', 0), ('1,0', 1), ('0,1', 1), ('2,1', 2), ('5,0', 0), ('0,5', 0), ('5,5', 5),
])
def test_two_halves_and_the_status(fake_venv, rcs, expected):
    env, calls = fake_venv
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'run_tests.sh'), '-x', '-k', 'foo'],
                          env=dict(env, FAKE_PYTEST_RCS=rcs), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == expected, proc.stderr
    base = '-m pytest tests -q -p no:cacheprovider'
    hidden = f'hidden=1 {ROOT}/tests/no_ops'  # from the interpreter's start
    assert calls.read_text().splitlines() == [
        f'{base} --mmcv-ops=without -x -k foo | {hidden}',  # a failing first half: the
        f'{base} --mmcv-ops=only -x -k foo | hidden= ',  # second still runs
    ]


@pytest.mark.parametrize('pip_ok', [True, False])
def test_dali_is_installed_for_its_tests_and_then_required(fake_venv, pip_ok):
    """An env without NVIDIA DALI gets it from pip, and its tests must then run in both halves
    (PCAE_MM_REQUIRE_DALI=1); where pip cannot install it, a warning says they skip. An env
    that has it is not touched (the warm path)."""
    env, calls = fake_venv
    env = dict(env, FAKE_PYTEST_RCS='0,0', FAKE_NO_DALI='1', FAKE_PIP_OK='1' if pip_ok else '')
    env.pop('PCAE_MM_REQUIRE_DALI', None)
    for attempt in range(2):
        proc = subprocess.run(['bash', str(ROOT / 'tools' / 'run_tests.sh')], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        pip = Path(f'{calls}.pip').read_text().splitlines()
        assert len(pip) == (1 if pip_ok else attempt + 1)  # installed once, or tried each run
        assert 'install' in pip[0] and 'nvidia-dali-cuda120==' in pip[0]
        require = Path(f'{calls}.require').read_text().splitlines()[-2:]
        assert require == (['1', '1'] if pip_ok else ['', ''])
        assert ('NVIDIA DALI could not be installed: its tests skip' in proc.stderr) != pip_ok


def test_ctrl_c_stops_both_halves(fake_venv):
    env, calls = fake_venv
    proc = subprocess.Popen(['bash', str(ROOT / 'tools' / 'run_tests.sh')],
                            env=dict(env, FAKE_SLEEP='5'), stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 20
    while not (calls.exists() and calls.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and '[run_tests] interrupted' in err
    assert len(calls.read_text().splitlines()) == 1


def test_ci_calls_exactly_the_readme_command():
    lines = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()]
    assert 'bash tools/run_tests.sh' in lines
    assert 'bash tools/run_tests.sh' in (ROOT / 'README.md').read_text()


# ---- the rules: which test needs the compiled ops (read from the files) -----------------------


def test_ops_names():
    assert all(map(needs_ops_name, ['mmdet', 'mmdet.models', 'mmseg.apis', 'mmcv.ops.nms',
                                    'mmcv._ext']))
    assert not any(map(needs_ops_name, ['mmcv', 'mmcv.cnn', 'mmdetx', 'mmpretrain', 'mmcv.opsx']))


def write(root: Path, files: dict) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))


def test_scan_rules(tmp_path):
    write(tmp_path, {
        'tools/__init__.py': '',
        'tools/det_helper.py': 'import mmdet.models\n',
        'tools/lazy_helper.py': 'def f():\n    import mmdet.models\n',
        'tools/chain.py': 'from . import det_helper\n',
        'configs/_base_/rt_det.py': "default_scope = 'mmdet'\n",
        'configs/det/mask.py': "_base_ = ['../_base_/rt_det.py']\n",
        'configs/cls/vit.py': "default_scope = 'mmpretrain'\n",
        't/test_top.py': 'import mmseg\ndef test_a(): pass\n',
        't/test_from_ops.py': 'from mmcv import ops\ndef test_a(): pass\n',
        't/test_chain.py': 'import tools.chain\ndef test_a(): pass\n',
        't/test_lazy_helper.py': 'import tools.lazy_helper\ndef test_a(): pass\n',
        't/test_in_test.py': '''
            def test_det():
                from mmdet.models import MaskRCNN
            def test_plain():
                import mmcv.cnn
            class TestX:
                def test_seg(self):
                    import mmseg.models
        ''',
        't/test_in_helper.py': '''
            def helper():
                import mmdet.registry
            def test_a(): pass
        ''',
        't/test_config.py': '''
            import os.path as osp
            def test_det():
                path = osp.join('configs', 'det/mask.py')
            def test_cls():
                path = 'configs/cls/vit.py'
        ''',
        't/test_marked.py': '''
            import pytest
            @pytest.mark.needs_ops
            def test_a(): pass
        ''',
        't/test_broken.py': 'def test_a(:\n',
    })
    scan = OpsScan(str(tmp_path))
    need = lambda name: scan.file_needs(str(tmp_path / 't' / name))  # noqa: E731
    assert need('test_top.py').module and need('test_from_ops.py').module
    chain = need('test_chain.py')
    assert chain.module and 'tools.chain -> tools.det_helper' in chain.why
    assert not need('test_lazy_helper.py').module  # only module-level imports are followed
    in_test = need('test_in_test.py')
    assert not in_test.module and in_test.tests == {'test_det', 'TestX::test_seg'}
    assert need('test_in_helper.py').module
    config = need('test_config.py')
    assert not config.module and config.tests == {'test_det'}
    assert scan.ops_configs() == {'configs/_base_/rt_det.py', 'configs/det/mask.py'}
    marked = need('test_marked.py')
    assert marked.marked and not marked.module and not marked.tests
    assert need('test_broken.py').tests == set()  # pytest reports the syntax error


def test_this_repository_is_split_as_its_files_say():
    """A few facts about the real suite: the mmdet / mmseg configs are recognised, and so are
    the tests that train from them; plain pre-training tests are not affected."""
    scan = OpsScan()
    configs = scan.ops_configs()
    assert any(c.startswith('configs/benchmarks/mask_rcnn/') for c in configs)
    assert any(c.startswith('configs/benchmarks/upernet/') for c in configs)
    assert not any(c.startswith('configs/benchmarks/classification/') for c in configs)
    down = scan.file_needs(str(ROOT / 'tests/test_downstream/test_from_pretrained_checkpoint.py'))
    assert not down.module
    assert {'test_coco_mask_rcnn_from_pcae_checkpoint',
            'test_ade20k_upernet_from_pcae_checkpoint'} <= down.tests
    for rel in ('tests/test_tools/test_setup_env.py', 'tests/test_tools/test_train.py'):
        plain = scan.file_needs(str(ROOT / rel))
        assert not plain.module and not plain.tests, rel


# ---- the halves in a real pytest run ---------------------------------------------------------

HALVES = {
    'test_free.py': '''
        import importlib, importlib.util, subprocess, sys
        import pytest

        def test_ops_hidden_here_and_in_subprocesses():
            assert importlib.util.find_spec('mmcv._ext') is None
            with pytest.raises(ImportError):
                importlib.import_module('mmcv.ops')  # (an import statement would mark it)
            from mmengine.utils.dl_utils import mmcv_full_available
            assert not mmcv_full_available()
            child = subprocess.run([sys.executable, '-c', 'import mmcv; import mmcv.ops'],
                                   capture_output=True, text=True)
            assert child.returncode != 0 and 'mmcv._ext' in child.stderr

        def test_pretraining_parts_import():
            import mmcv.cnn, mmpretrain.models, pcae_mm
    ''',
    'test_det.py': '''
        import os
        open(os.environ['IMPORTED'], 'a').write('test_det\\n')
        import mmdet.models

        def test_det():
            from mmcv.ops import nms
    ''',
    'test_mixed.py': '''
        import pytest

        @pytest.mark.needs_ops
        def test_marked():
            import importlib.util
            assert importlib.util.find_spec('mmcv._ext') is not None

        def test_plain():
            pass

        def test_unmarked_needs_ops():
            import importlib
            importlib.import_module('mmcv.ops')
    ''',
}


def run_half(folder: Path, mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), IMPORTED=str(folder / 'imported'))
    env.pop('PCAE_MM_HIDE_MMCV_OPS', None)
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-p', 'tests.ops_split', '-p',
         'no:cacheprovider', '-rA', f'--mmcv-ops={mode}', str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.needs_ops  # its second half needs the compiled ops
def test_the_halves_in_a_pytest_run(tmp_path):
    write(tmp_path, HALVES)
    first = run_half(tmp_path, 'without')
    out = first.stdout
    assert 'PASSED test_free.py::test_ops_hidden_here_and_in_subprocesses' in out, out
    assert 'PASSED test_free.py::test_pretraining_parts_import' in out
    assert 'PASSED test_mixed.py::test_plain' in out
    assert 'FAILED test_mixed.py::test_unmarked_needs_ops' in out
    assert 'test_marked' not in out and 'test_det' not in out
    assert not (tmp_path / 'imported').exists()  # the module that needs ops was not imported
    assert 'mark each with @pytest.mark.needs_ops' in out and 'test_unmarked_needs_ops' in out
    assert first.returncode == 1
    second = run_half(tmp_path, 'only')
    out = second.stdout
    assert second.returncode == 0, out
    assert 'PASSED test_det.py::test_det' in out and 'PASSED test_mixed.py::test_marked' in out
    assert 'test_free' not in out and 'test_plain' not in out


def test_tool_subprocesses_keep_the_first_halfs_hiding(monkeypatch):
    """Every test that starts a tool takes its environment from tests.helpers.tool_env: the
    repository first, then this process's PYTHONPATH (tests/no_ops in the first half), so the
    tool hides the compiled ops as pytest does; a user's debugging switches do not reach it."""
    from tests.helpers import tool_env
    no_ops = str(ROOT / 'tests' / 'no_ops')
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([no_ops, str(ROOT)]))
    monkeypatch.setenv('PCAE_MM_TRACEBACK', '1')
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    monkeypatch.setenv('OMP_NUM_THREADS', '8')
    env = tool_env(PORT='1234')
    assert env['PYTHONPATH'].split(os.pathsep) == [str(ROOT), no_ops]
    assert env['OMP_NUM_THREADS'] == '1' and env['PORT'] == '1234'
    assert 'PCAE_MM_TRACEBACK' not in env and 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in env
    assert tool_env(OMP_NUM_THREADS='2')['OMP_NUM_THREADS'] == '2'  # extra wins
