"""The set-up script's rules, checked in seconds (the cold build itself runs in CI).

``tools/setup_env.sh`` only runs ``main`` when executed, so sourcing it exposes its pure rules
(stamp, flavour, cache key, progress parsing, health checks) and the mmcv build driver, which
runs here against a fake ``pip`` that prints ninja-style progress and writes a wheel.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'setup_env.sh'


def bash(snippet: str, env: dict = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``snippet`` in bash after sourcing the set-up script (``main`` is not run)."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(['bash', '-c', f'source {SCRIPT}\n{snippet}'], env=full_env,
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_syntax():
    subprocess.run(['bash', '-n', str(SCRIPT)], check=True)


def test_sourcing_runs_nothing(tmp_path):
    proc = bash('echo sourced', env=dict(PCAE_MM_VENV=str(tmp_path / 'venv')))
    assert proc.stdout.strip() == 'sourced'
    assert not (tmp_path / 'venv').exists()


@pytest.mark.parametrize('force,nvcc,torch_cuda,archs,expected', [
    ('auto', '0', '', '', 'cpu'),
    ('auto', '1', '13.0', '', 'cpu'),          # nvcc + CUDA torch, but no GPU and no arch list
    ('auto', '0', '13.0', '9.0', 'cpu'),       # no toolkit
    ('auto', '1', '', '9.0', 'cpu'),           # CPU-only torch
    ('auto', '1', '13.0', '9.0', 'cuda'),
    ('0', '1', '13.0', '9.0', 'cpu'),
    ('1', '1', '13.0', '8.0;9.0', 'cuda'),
])
def test_flavour_rules(force, nvcc, torch_cuda, archs, expected):
    proc = bash(f'decide_flavour "{force}" "{nvcc}" "{torch_cuda}" "{archs}"')
    assert proc.stdout.strip() == expected


@pytest.mark.parametrize('force', ['1', 'yes'])
def test_flavour_refuses_impossible_cuda(force):
    proc = bash(f'decide_flavour "{force}" 1 "" ""', check=False)
    assert proc.returncode == 2


def test_cache_key_names_torch_python_and_flavour():
    cpu = bash('cache_key 2.14.1+cu130 311 cpu 13.0 ""').stdout.strip()
    assert cpu == 'mmcv-2.1.0-torch-2.14.1+cu130-py311-cpu'
    cuda = bash('cache_key 2.14.1+cu130 311 cuda 13.0 "9.0;8.0"').stdout.strip()
    assert cuda == 'mmcv-2.1.0-torch-2.14.1+cu130-py311-cuda13.0-sm80_sm90'
    # the same arch list written with spaces gives the same key; another arch list another key
    assert bash('cache_key 2.14.1+cu130 311 cuda 13.0 "8.0 9.0"').stdout.strip() == cuda
    assert bash('cache_key 2.14.1+cu130 311 cuda 13.0 "9.0"').stdout.strip() != cuda
    assert bash('cache_key 2.13.0 311 cpu "" ""').stdout.strip() != cpu


def test_stamp_follows_overrides():
    plain = bash('want_stamp').stdout
    assert bash('want_stamp', env=dict(PCAE_MM_MMCV_CUDA='0')).stdout != plain
    assert bash('want_stamp', env=dict(TORCH_CUDA_ARCH_LIST='9.0')).stdout != plain
    assert bash('want_stamp', env=dict(PCAE_MM_TORCH='torch==2.13.0')).stdout != plain


def test_progress_from_log(tmp_path):
    log = tmp_path / 'build.log'
    log.write_text('Running setup.py\n[1/131] c++ -c a.cpp\n  [57/131] c++ -c b.cpp\nwarning\n')
    assert bash(f'progress_from_log {log}').stdout.strip() == '57/131'
    assert bash(f'progress_from_log {tmp_path / "missing.log"}').stdout.strip() == ''


def test_half_made_venv_is_unhealthy(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)  # interrupted before python was copied
    assert bash(f'venv_healthy {venv}', check=False).returncode != 0
    (venv / 'bin' / 'python').write_text('#!/bin/sh\nexit 1\n')  # python there, pip not
    (venv / 'bin' / 'python').chmod(0o755)
    assert bash(f'venv_healthy {venv}', check=False).returncode != 0


def test_current_stamp_returns_at_once(tmp_path):
    """A verified env (stamp == what this script wants, python with pip) costs nothing."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    (venv / 'bin' / 'python').symlink_to(subprocess.check_output(
        ['python3', '-c', 'import sys; print(sys.executable)'], text=True).strip())
    env = dict(os.environ, PCAE_MM_VENV=str(venv), PCAE_MM_CACHE=str(tmp_path / 'cache'))
    stamp = bash('want_stamp', env=env).stdout
    (venv / '.pcae_mm_env').write_text(stamp)
    start = time.monotonic()
    proc = subprocess.run(['bash', str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    assert time.monotonic() - start < 5
    assert not (tmp_path / 'cache').exists()


def test_corrupt_wheel_detected(tmp_path):
    bad = tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    bad.write_bytes(b'PK\x03\x04 truncated')
    assert bash(f'wheel_ok {bad}', check=False).returncode != 0
    good = tmp_path / 'good.whl'
    with zipfile.ZipFile(good, 'w') as zf:
        zf.writestr('mmcv/__init__.py', '')
    assert bash(f'wheel_ok {good}').returncode == 0


FAKE_PIP = textwrap.dedent('''\
    #!/usr/bin/env python3
    """Stands in for `python -m pip wheel`: ninja-style progress, then a wheel in -w DIR."""
    import os, sys, time, zipfile
    args = sys.argv
    out = args[args.index('-w') + 1]
    total = int(os.environ.get('FAKE_TOTAL', '4'))
    for i in range(1, total + 1):
        print(f'[{i}/{total}] c++ -c op{i}.cpp', flush=True)
        time.sleep(float(os.environ.get('FAKE_DELAY', '0.3')))
    if os.environ.get('FAKE_FAIL'):
        print('op.cpp:1: error: boom', flush=True)
        sys.exit(1)
    with zipfile.ZipFile(os.path.join(out, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'), 'w') as zf:
        zf.writestr('mmcv/__init__.py', '')
''')


@pytest.fixture
def fake_build(tmp_path):
    """Paths and environment for running ``build_mmcv`` against the fake pip."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    fake = venv / 'bin' / 'python'
    fake.write_text(FAKE_PIP)
    fake.chmod(0o755)
    cache = tmp_path / 'cache'
    wheels = cache / 'wheels' / 'mmcv-2.1.0-torch-x-py311-cpu'
    env = dict(PCAE_MM_VENV=str(venv), PCAE_MM_CACHE=str(cache), PCAE_MM_PROGRESS_EVERY='1')
    snippet = f'VPY={fake}; build_mmcv {wheels} cpu "" 0 {cache}/logs/build.log'
    return dict(env=env, snippet=snippet, wheels=wheels, log=cache / 'logs' / 'build.log')


def test_build_shows_progress_and_caches_the_wheel(fake_build):
    stale = Path(str(fake_build['wheels']) + '.tmp')
    stale.mkdir(parents=True)
    (stale / 'mmcv-2.1.0-half.whl').write_bytes(b'half')  # left by an interrupted build
    proc = bash(fake_build['snippet'], env=dict(fake_build['env'], FAKE_TOTAL='4'))
    assert 'compiled' in proc.stderr and 'of 4 objects' in proc.stderr, proc.stderr
    assert f'full compiler log: {fake_build["log"]}' in proc.stderr
    assert [p.name for p in fake_build['wheels'].iterdir()] == [
        'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl']
    assert not stale.exists()


def test_build_failure_prints_log_tail(fake_build):
    proc = bash(fake_build['snippet'], env=dict(fake_build['env'], FAKE_FAIL='1',
                                                FAKE_DELAY='0'), check=False)
    assert proc.returncode != 0
    assert 'op.cpp:1: error: boom' in proc.stderr
    assert f'full log: {fake_build["log"]}' in proc.stderr
    assert not Path(str(fake_build['wheels']) + '.tmp').exists()
    assert not fake_build['wheels'].exists()


def test_interrupted_build_leaves_nothing_to_reuse(fake_build):
    """Ctrl-C during the compile: the compiler tree stops, the partial folder is removed."""
    env = dict(os.environ, **fake_build['env'], FAKE_TOTAL='50', FAKE_DELAY='0.5')
    # Its own process group with the default SIGINT action, like a command typed at a terminal
    # (CI may start us with SIGINT ignored, which a shell cannot trap).
    proc = subprocess.Popen(['bash', '-c', f'source {SCRIPT}\n{fake_build["snippet"]}'],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    tmp = Path(str(fake_build['wheels']) + '.tmp')
    deadline = time.monotonic() + 20
    while '[2/50]' not in (fake_build['log'].read_text() if fake_build['log'].exists() else ''):
        assert time.monotonic() < deadline, 'the fake build never started'
        time.sleep(0.2)
    assert tmp.exists()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert 'interrupted: the partial mmcv build was removed' in err, err
    assert not tmp.exists(), err
    assert not fake_build['wheels'].exists()
    time.sleep(1.0)
    lines = fake_build['log'].read_text().count('\n')
    time.sleep(1.5)
    assert fake_build['log'].read_text().count('\n') == lines, 'the build kept running'


# ---- the whole set-up, end to end, on a fake interpreter (tests/helpers/fake_setup.py) --------
# The script runs unchanged: stamps, locks, the background job, signals and messages are real;
# pip, the torch probe, the compile and the verification are the fake's.


class FakeSetup:
    """One env (``venv``) and cache driven through the real script by the fake interpreter."""

    def __init__(self, tmp_path: Path, venv: str = 'venv', **knobs: str):
        from tests.helpers.fake_setup import write_fake_python
        self.tmp = tmp_path
        self.venv = tmp_path / venv
        self.record = tmp_path / f'{venv}.calls'
        self.env = dict(os.environ, PYTHON=write_fake_python(str(tmp_path / 'base')),
                        PCAE_MM_VENV=str(self.venv), PCAE_MM_CACHE=str(tmp_path / 'cache'),
                        FAKE_RECORD=str(self.record), PCAE_MM_PROGRESS_EVERY='1',
                        PCAE_MM_NICE='0')
        self.env.update(dict(FAKE_TOTAL='6', FAKE_DELAY='0.3'), **knobs)
        self.env.pop('PCAE_MM_HIDE_MMCV_OPS', None)

    def run(self, *args: str, timeout: float = 60, **knobs: str) -> subprocess.CompletedProcess:
        return subprocess.run(['bash', str(SCRIPT), *args], env=dict(self.env, **knobs),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str, **knobs: str) -> subprocess.Popen:
        """The script in its own process group with SIGINT at its default (as typed at a
        terminal); its stderr goes to a file, read with ``err()``."""
        self.errfile = self.tmp / f'err.{time.monotonic_ns()}'
        return subprocess.Popen(['bash', str(SCRIPT), *args], env=dict(self.env, **knobs),
                                stdout=subprocess.DEVNULL, stderr=open(self.errfile, 'w'),
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def err(self) -> str:
        return self.errfile.read_text()

    def until(self, what, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            time.sleep(0.1)

    def calls(self, prefix: str) -> int:
        text = self.record.read_text() if self.record.exists() else ''
        return sum(line.startswith(prefix) for line in text.splitlines())

    def state(self):
        from tools.setup_state import ops_state
        return ops_state(str(self.venv))

    def wait(self, progress=None):
        from tools.setup_state import wait_for_mmcv_ops
        return wait_for_mmcv_ops(progress, venv=str(self.venv), poll=0.1, timeout=60)

    def stamp(self, name: str) -> str:
        path = self.venv / name
        return path.read_text() if path.exists() else ''

    def want(self) -> str:
        return bash('want_stamp', env=self.env).stdout

    @property
    def site(self) -> Path:
        return self.venv / 'site'


@pytest.fixture
def fake_setup(tmp_path):
    setups = []

    def make(venv: str = 'venv', **knobs: str) -> FakeSetup:
        setups.append(FakeSetup(tmp_path, venv, **knobs))
        return setups[-1]

    yield make
    for s in setups:  # no background job outlives its test
        s.run('--stop', timeout=60)


def test_cold_setup_is_core_at_once_then_full_in_the_background(fake_setup):
    s = fake_setup()
    proc = s.run()
    assert proc.returncode == 0, proc.stderr
    # it returned (with our output pipes closed) while the ops still compile
    assert s.stamp('.pcae_mm_core') == s.want() and s.stamp('.pcae_mm_env') == ''
    assert 'core ready in' in proc.stderr and 'now compile in the background' in proc.stderr
    assert (s.site / 'mmcv' / '__init__.py').exists() and s.calls('pip install mmcv-lite') == 1
    lines = []
    assert s.wait(lines.append).name == 'full'
    assert any(re.fullmatch(r'waiting for mmcv ops: compiled \d of 6', line) for line in lines)
    assert s.stamp('.pcae_mm_env') == s.want()
    # the compiled wheel replaced mmcv-lite: its ops file, its metadata; lite's gone
    assert (s.site / 'mmcv' / '_ext.py').exists()
    assert (s.site / 'mmcv-2.1.0.dist-info' / 'METADATA').exists()
    assert not (s.site / 'mmcv_lite-2.1.0.dist-info').exists()
    assert not (s.site / 'mmcv' / 'lite_only.py').exists()
    assert not list(s.site.glob('.pcae_mm_mmcv_stage*'))
    assert 'done: mmcv\'s compiled ops are installed' in (s.venv / '.pcae_mm_ops.log').read_text()
    assert s.calls('pip wheel') == 1
    start = time.monotonic()
    warm = s.run()
    assert warm.returncode == 0 and warm.stderr == '' and time.monotonic() - start < 5


def test_a_second_run_during_the_build_reuses_it(fake_setup):
    s = fake_setup(FAKE_TOTAL='20', FAKE_DELAY='0.2')
    assert s.run().returncode == 0
    s.until(lambda: s.state().done is not None)
    again = s.run()
    assert again.returncode == 0, again.stderr
    assert re.search(r'mmcv ops: compiling in the background, compiled \d+ of 20', again.stderr)
    assert 'step 1/5' not in again.stderr
    assert s.wait().name == 'full'
    assert s.calls('pip wheel') == 1 and s.calls('venv') == 1


def test_failed_background_build_says_why_and_the_next_run_retries(fake_setup):
    s = fake_setup(FAKE_FAIL='1', FAKE_DELAY='0')
    assert s.run().returncode == 0  # core is ready even though the build will fail
    from tools.setup_state import MmcvOpsError
    with pytest.raises(MmcvOpsError) as e:
        s.wait()
    msg = str(e.value)
    assert 'the mmcv ops build failed: building mmcv 2.1.0 failed' in msg
    assert 'op.cpp:1: error: boom' in msg and 'bash tools/setup_env.sh' in msg
    assert s.state().name == 'failed' and s.stamp('.pcae_mm_env') == ''
    assert not list((s.tmp / 'cache' / 'wheels').glob('*.tmp'))
    retry = s.run(FAKE_FAIL='')
    assert retry.returncode == 0, retry.stderr
    assert 'the last background mmcv build failed' in retry.stderr
    assert 'trying again' in retry.stderr
    assert s.wait().name == 'full' and not (s.venv / '.pcae_mm_ops.failed').exists()
    assert s.calls('pip wheel') == 2


def test_ctrl_c_of_the_foreground_marks_nothing_and_the_next_run_continues(fake_setup):
    s = fake_setup(FAKE_PIP_DELAY='5')
    proc = s.start()
    s.until(lambda: 'step 1/5' in s.err())
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert 'interrupted during step 1/5' in s.err() and 'run the same command again' in s.err()
    assert s.stamp('.pcae_mm_core') == '' and s.stamp('.pcae_mm_env') == ''
    assert not (s.venv / '.pcae_mm_ops.lock').exists()  # no background job was started
    done = s.run(FAKE_PIP_DELAY='0')
    assert done.returncode == 0 and 'core ready' in done.stderr, done.stderr
    assert s.wait().name == 'full'


def test_ctrl_c_while_waiting_leaves_the_build_running(fake_setup):
    s = fake_setup(FAKE_TOTAL='25', FAKE_DELAY='0.2')
    proc = s.start('--wait')
    s.until(lambda: 'waiting for mmcv ops' in s.err())
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) != 0
    assert 'the mmcv ops build goes on in the background' in s.err(), s.err()
    assert s.state().name in ('building', 'installing', 'full')
    assert s.wait().name == 'full'


def test_wait_option_returns_when_full(fake_setup):
    s = fake_setup()
    proc = s.run('--wait')
    assert proc.returncode == 0, proc.stderr
    assert 'waiting for mmcv ops' in proc.stderr and 'mmcv ops installed' in proc.stderr
    assert s.stamp('.pcae_mm_env') == s.want()


def test_two_setups_at_once_take_turns_and_build_once(fake_setup):
    s = fake_setup(FAKE_PIP_DELAY='0.5')
    first, second = s.start(), s.start()
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    assert s.wait().name == 'full'
    assert s.calls('venv') == 1 and s.calls('pip wheel') == 1
    assert s.calls('pip install setuptools') == 1  # the second found the env core, not empty


def test_two_envs_sharing_the_cache_build_once(fake_setup):
    a, b = fake_setup('a', FAKE_TOTAL='20', FAKE_DELAY='0.2'), fake_setup('b')
    assert a.run().returncode == 0
    a.until(lambda: a.state().done is not None)
    assert b.run().returncode == 0
    assert a.wait().name == 'full' and b.wait().name == 'full'
    assert a.calls('pip wheel') + b.calls('pip wheel') == 1
    assert 'builds mmcv-2.1.0-torch-2.14.1-py311-cpu: waiting for it' in (
        b.venv / '.pcae_mm_ops.log').read_text()
    # a third env on that machine finds the wheel cached: full at once, no mmcv-lite
    c = fake_setup('c')
    proc = c.run()
    assert proc.returncode == 0 and 'installing the cached wheel' in proc.stderr
    assert c.stamp('.pcae_mm_env') == c.want() and c.calls('pip install mmcv-lite') == 0


def test_stop_then_the_next_run_starts_the_build_again(fake_setup):
    s = fake_setup(FAKE_TOTAL='60', FAKE_DELAY='0.2')
    assert s.run().returncode == 0
    s.until(lambda: s.state().done is not None)
    stop = s.run('--stop')
    assert stop.returncode == 0 and 'stopped the background mmcv build' in stop.stderr
    state = s.state()
    assert state.name == 'failed' and 'stopped by a signal' in state.message
    assert not list((s.tmp / 'cache' / 'wheels').glob('*.tmp'))
    again = s.run(FAKE_TOTAL='3')
    assert 'trying again' in again.stderr, again.stderr
    assert s.wait().name == 'full'


def _autogroup(pid: int | str) -> list[str]:
    """``/proc/PID/autogroup`` as words: ``['/autogroup-N', 'nice', 'K']``, or ``[]`` where the
    kernel reports none (a task still in the root group, as a container's first session is)."""
    with open(f'/proc/{pid}/autogroup') as f:
        return f.read().split()


@pytest.mark.skipif(not os.path.exists('/proc/self/autogroup'),
                    reason='this kernel has no autogroup scheduler')
def test_the_background_build_yields_the_cpu_under_the_autogroup_scheduler(fake_setup, tmp_path):
    """With autogroup, niceness counts only inside a session's group: the job (its own session)
    must nice its group too, or it takes half the CPU from the demo whatever ``nice`` says."""
    s = fake_setup(FAKE_TOTAL='60', FAKE_DELAY='0.2', PCAE_MM_NICE='7',
                   FAKE_BUILD_PID=str(tmp_path / 'build.pid'))
    assert s.run().returncode == 0
    s.until(lambda: (tmp_path / 'build.pid').exists() and s.state().done is not None)
    job = int((s.venv / '.pcae_mm_ops.pid').read_text().split()[0])
    build = int((tmp_path / 'build.pid').read_text())
    for pid in (job, build):
        assert os.getpriority(os.PRIO_PROCESS, pid) == 7
    # This test may itself run in the root group, whose file is empty (CI's container does):
    # the job and the compiler start sessions of their own, so theirs must name a group.
    mine = (_autogroup('self') or ['(root group)'])[0]
    groups = {pid: _autogroup(pid) for pid in (job, build)}
    if not any(groups.values()):
        pytest.skip('this kernel reports no autogroup for a new session: nothing to nice')
    if not os.access(f'/proc/{job}/autogroup', os.W_OK):
        pytest.skip('/proc/PID/autogroup is read-only here (a read-only /proc): the set-up '
                    'cannot nice the groups and says nothing, by design')
    for pid, group in groups.items():
        assert group and group[0] != mine and group[-1] == '7', (pid, group)  # own group, niced


def test_a_killed_job_is_noticed_and_redone(fake_setup, tmp_path):
    """kill -9 of the job and its compiler: no message could be written; the state still says
    what happened and the next run starts over (the half-built wheel folder is not used)."""
    s = fake_setup(FAKE_TOTAL='60', FAKE_DELAY='0.2', FAKE_BUILD_PID=str(tmp_path / 'build.pid'))
    assert s.run().returncode == 0
    s.until(lambda: s.state().done is not None)
    job = int((s.venv / '.pcae_mm_ops.pid').read_text().split()[0])
    build = int((tmp_path / 'build.pid').read_text())
    os.killpg(job, signal.SIGKILL)
    os.killpg(os.getpgid(build), signal.SIGKILL)
    s.until(lambda: s.state().name == 'stopped')
    from tools.setup_state import MmcvOpsError
    with pytest.raises(MmcvOpsError, match='not running and did not finish'):
        s.wait()
    again = s.run(FAKE_TOTAL='3')
    assert again.returncode == 0 and 'now compile in the background' in again.stderr
    assert s.wait().name == 'full'


def test_a_job_killed_while_installing_is_finished_by_the_next_run(fake_setup):
    """The wheel is cached, the install was cut short: the next set-up installs it (no new
    compile) and the env is full when it returns."""
    s = fake_setup(FAKE_TARGET_DELAY='30')
    assert s.run().returncode == 0
    s.until(lambda: s.state().name == 'installing')
    os.killpg(int((s.venv / '.pcae_mm_ops.pid').read_text().split()[0]), signal.SIGKILL)
    s.until(lambda: s.state().name == 'stopped')
    again = s.run(FAKE_TARGET_DELAY='0')
    assert again.returncode == 0, again.stderr
    assert 'installing the compiled mmcv built meanwhile' in again.stderr
    assert s.stamp('.pcae_mm_env') == s.want() and (s.site / 'mmcv' / '_ext.py').exists()
    assert s.calls('pip wheel') == 1


def test_a_process_that_imported_mmcv_lite_uses_the_ops_after_the_wait(fake_setup):
    """The demo's case: mmcv-lite imported, the ops installed meanwhile, then imported."""
    s = fake_setup(FAKE_TOTAL='15', FAKE_DELAY='0.2')
    assert s.run().returncode == 0
    code = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(s.site)!r})
        import mmcv, mmcv.utils
        try:
            import mmcv._ext
            raise SystemExit('ops before the build finished')
        except ImportError:
            pass
        from tools.setup_state import wait_for_mmcv_ops
        assert wait_for_mmcv_ops(venv={str(s.venv)!r}, poll=0.1).name == 'full'
        import mmcv._ext
        print('ops', mmcv._ext.OPS, mmcv.__version__)
    ''')
    # the fake mmcv stands in for the real one: the first half of tools/run_tests.sh must not
    # hide its (fake) ops from this process
    env = {k: v for k, v in os.environ.items() if k != 'PCAE_MM_HIDE_MMCV_OPS'}
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['ops', 'True', '2.1.0']
