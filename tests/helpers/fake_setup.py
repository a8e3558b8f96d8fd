"""A stand-in Python interpreter that lets tools/setup_env.sh run end to end in seconds.

The real script runs unchanged (its locks, stamps, background job, signals and messages are
what the tests check); only what it asks the interpreter for is faked: ``-m venv`` copies this
fake, ``-m pip install`` / ``uninstall`` / ``show`` act on a folder ``<venv>/site``, ``-m pip
wheel`` is the mmcv build (ninja-style ``[i/N]`` lines, then a wheel), the probe / verification
snippets (recognised by their ``# setup_env: <what>`` first line) answer from ``<venv>/site``.
Everything else, including the snippet that moves the compiled mmcv in, runs on the real
interpreter. mmcv-lite and the compiled wheel hold the same two files; the wheel adds
``mmcv/_ext.py`` (the "compiled ops"); mmcv-lite also lists ``mmcv/lite_only.py``.

Knobs (environment): ``FAKE_RECORD`` (a file: one line per pip call), ``FAKE_TOTAL`` /
``FAKE_DELAY`` (objects to compile, seconds each), ``FAKE_FAIL`` (the build fails),
``FAKE_PIP_DELAY`` (seconds per ``pip install``), ``FAKE_TARGET_DELAY`` (seconds to unpack the
compiled wheel), ``FAKE_BUILD_PID`` (a file: the build's pid).
"""
import fcntl
import os
import stat
import sys
from typing import Callable

FAKE_PYTHON = r'''#!{real}
import os, shutil, subprocess, sys, time, zipfile
REAL = {real!r}
args = sys.argv[1:]
venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
site = os.path.join(venv, 'site')
CODE = {{'mmcv/__init__.py': "__version__ = '2.1.0'\n", 'mmcv/utils.py': 'X = 1\n'}}


def knob(name, default=''):
    return os.environ.get(name, default)


def note(*words):
    if knob('FAKE_RECORD'):
        with open(knob('FAKE_RECORD'), 'a') as f:
            f.write(' '.join(words) + '\n')


def write(root, files):
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), 'w') as f:
            f.write(text)


def has(rel):
    return os.path.exists(os.path.join(site, rel))


if args[:2] == ['-m', 'venv']:
    os.makedirs(os.path.join(args[2], 'bin'))
    os.makedirs(os.path.join(args[2], 'site'))
    shutil.copy(sys.argv[0], os.path.join(args[2], 'bin', 'python'))
    note('venv')
    sys.exit(0)
if args[:2] == ['-m', 'pip']:
    rest = [a for a in args[2:] if a != '--disable-pip-version-check']
    note('pip', *rest)
    if rest[0] == 'install':
        time.sleep(float(knob('FAKE_PIP_DELAY', '0')))
        if '--target' in rest:
            time.sleep(float(knob('FAKE_TARGET_DELAY', '0')))
            zipfile.ZipFile(rest[-1]).extractall(rest[rest.index('--target') + 1])
        elif 'mmcv-lite==2.1.0' in rest and not has('mmcv_lite-2.1.0.dist-info'):
            lite = dict(CODE, **{{'mmcv/lite_only.py': ''}})
            record = ''.join(f'{{k}},,\n' for k in lite)
            write(site, dict(lite, **{{'mmcv_lite-2.1.0.dist-info/RECORD': record}}))
        sys.exit(0)
    if rest[0] == 'show':
        sys.exit(0 if has('mmcv-2.1.0.dist-info') else 1)
    if rest[0] == 'uninstall':
        shutil.rmtree(os.path.join(site, 'mmcv-2.1.0.dist-info'), ignore_errors=True)
        sys.exit(0)
    if rest[0] == 'wheel':  # the mmcv build
        if knob('FAKE_BUILD_PID'):
            with open(knob('FAKE_BUILD_PID'), 'w') as f:
                f.write(str(os.getpid()))
        total = int(knob('FAKE_TOTAL', '4'))
        for i in range(1, total + 1):
            print(f'[{{i}}/{{total}}] c++ -c op{{i}}.cpp', flush=True)
            time.sleep(float(knob('FAKE_DELAY', '0.3')))
        if knob('FAKE_FAIL'):
            print('op.cpp:1: error: boom', flush=True)
            sys.exit(1)
        out = rest[rest.index('-w') + 1]
        with zipfile.ZipFile(os.path.join(out, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'),
                             'w') as zf:
            for rel, text in dict(CODE, **{{'mmcv/_ext.py': 'OPS = True\n'}}).items():
                zf.writestr(rel, text)
            zf.writestr('mmcv-2.1.0.dist-info/RECORD', 'mmcv/__init__.py,,\n')
            zf.writestr('mmcv-2.1.0.dist-info/METADATA', 'Name: mmcv\nVersion: 2.1.0\n')
        sys.exit(0)
if args[:2] == ['-c', 'import pip']:
    sys.exit(0)
if args[:1] == ['-c'] and 'mmcv._ext' in args[1]:
    sys.exit(0 if has('mmcv/_ext.py') else 1)
if args[:1] == ['-']:
    script = sys.stdin.read()
    what = script.split('\n', 1)[0]
    if what == '# setup_env: probe':
        print('2.14.1 311 - 1 -')
        sys.exit(0)
    if what == '# setup_env: site':
        print(site)
        sys.exit(0)
    if what == '# setup_env: verify core':
        sys.exit(0 if has('mmcv/__init__.py') else 1)
    if what == '# setup_env: verify full':
        print('[setup_env] ok (fake)')
        sys.exit(0 if has('mmcv/_ext.py') else 1)
    sys.exit(subprocess.run([REAL, '-'] + args[1:], input=script, text=True).returncode)
os.execv(REAL, [REAL] + args)
'''


def write_fake_python(folder: str) -> str:
    """Write the fake interpreter into ``folder`` (created) and return its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'python3')
    with open(path, 'w') as f:
        f.write(FAKE_PYTHON.format(real=sys.executable))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_ops_state(venv: str, state: str) -> Callable[[], None]:
    """Write the set-up's state files of ``venv`` by hand (tools/setup_state.py reads them).

    ``state``: ``building`` (the job's lock held, ``[3/77]`` in the build log) or ``failed``
    (a compile error in the log and the job's reason). Returns ``finish``: marks the env full
    and releases the lock (as the job does when it has installed the ops).
    """
    os.makedirs(venv, exist_ok=True)
    log = os.path.join(venv, 'key.build.log')
    with open(os.path.join(venv, '.pcae_mm_core'), 'w') as f:
        f.write('stamp\n')
    with open(os.path.join(venv, '.pcae_mm_ops'), 'w') as f:
        f.write(f'key=key\nwheels={venv}/wheels\nbuild_log={log}\n'
                f'job_log={venv}/.pcae_mm_ops.log\n')
    if state == 'failed':
        with open(log, 'w') as f:
            f.write('[3/77] c++ -c nms.cpp\nnms.cpp:1: error: boom\n')
        with open(os.path.join(venv, '.pcae_mm_ops.failed'), 'w') as f:
            f.write(f'building mmcv 2.1.0 failed after 0m09s; full log: {log}\n')
        return lambda: None
    assert state == 'building', state
    fd = os.open(os.path.join(venv, '.pcae_mm_ops.lock'), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with open(log, 'w') as f:
        f.write('[3/77] c++ -c nms.cpp\n')

    def finish() -> None:
        with open(os.path.join(venv, '.pcae_mm_env'), 'w') as f:
            f.write('stamp\n')
        os.close(fd)

    return finish
