"""The set-up script's rules, checked in seconds (the cold build itself runs in CI).

``tools/setup_env.sh`` only runs ``main`` when executed, so sourcing it exposes its pure rules
(stamp, flavour, cache key, progress parsing, health checks) and the mmcv build driver, which
runs here against a fake ``pip`` that prints ninja-style progress and writes a wheel.
"""
import os
import signal
import subprocess
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
