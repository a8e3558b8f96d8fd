"""A work dir is owned by one run (issue 25): two tools/train.py runs into one --work-dir never
both write; a lock left by a dead run is taken over with a note."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch

import pcae_mm  # noqa: F401
from pcae_mm.utils.workdir_lock import (LOCK_NAME, WorkDirLock, WorkDirLockedError,
                                        is_rank_zero)
from tests.helpers import ROOT, tiny_config, tool_env
from tools import train as TOOL

from tests.helpers.train_cli import run_train, train_command


def log_dirs(work):
    return sorted(p.name for p in work.iterdir() if p.is_dir() and p.name[:8].isdigit())


def test_two_runs_started_at_once_into_one_work_dir_one_is_refused(tmp_path, tiny_imagenet):
    """The issue's run: two tools/train.py processes started together into one --work-dir."""
    work = tmp_path / 'work'
    cmd = train_command(work, tiny_imagenet, 'train_cfg.max_epochs=1')
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], [o[1][-2000:] for o in outs]
    refused = next(o for p, o in zip(procs, outs) if p.returncode == 1)[1]
    winner = next(p for p in procs if p.returncode == 0)
    assert 'Traceback' not in refused
    assert refused.strip().startswith('WorkDirLockedError: work dir')
    assert f'pid {winner.pid} on host {socket.gethostname()}' in refused  # names the owner
    assert 'tools/train.py' in refused  # and its command
    assert '--work-dir' in refused and '--resume' in refused and 'Wait' in refused
    # one run's files only: one log dir, one complete checkpoint; the lock is gone at exit
    assert len(log_dirs(work)) == 1
    assert torch.load(work / 'epoch_1.pth', map_location='cpu')['meta']['epoch'] == 1
    assert not (work / LOCK_NAME).exists()


HOLD = ('import sys, time\n'
        'from pcae_mm.utils.workdir_lock import WorkDirLock\n'
        'lock = WorkDirLock(sys.argv[1], command="python tools/train.py FIRST_RUN").acquire()\n'
        'print("locked", flush=True)\n'
        'time.sleep(600)\n')


def hold_lock(work):
    """Another process owning ``work`` like a run that started earlier and has not saved yet."""
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(work)], cwd=ROOT, env=tool_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def test_a_run_started_later_while_the_first_has_not_saved_is_refused(tmp_path, tiny_imagenet):
    """The issue's second case (the second run 22 s later, before the first saved): the first
    run holds the lock for its whole life, so the second is refused before writing anything;
    once the first is killed, its lock is taken over with a note."""
    work = tmp_path / 'work'
    holder = hold_lock(work)
    try:
        result = run_train(work, tiny_imagenet, 'train_cfg.max_epochs=1')
        assert result.returncode == 1, result.output[-3000:]
        assert 'Traceback' not in result.stderr
        assert f'pid {holder.pid}' in result.stderr and 'FIRST_RUN' in result.stderr
        assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]  # nothing written
        # --overwrite does not get past it either (it would delete the running run's files)
        result = run_train(work, tiny_imagenet, '--overwrite', 'train_cfg.max_epochs=1')
        assert result.returncode == 1 and 'WorkDirLockedError' in result.stderr
    finally:
        holder.kill()  # the first run dies without releasing its lock (SIGKILL)
        holder.wait()
    assert (work / LOCK_NAME).exists()
    with WorkDirLock(str(work)) as lock:  # the next run takes it over, saying so
        assert f'pid {holder.pid}' in lock.note and 'ended without releasing' in lock.note
    assert not (work / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(
        pid=dead.pid, host=socket.gethostname(), start=time.time() - 60, command='old run')))
    lock = WorkDirLock(str(tmp_path)).acquire()
    try:
        assert f'pid {dead.pid}' in lock.note and 'old run' in lock.note
        owner = json.loads((tmp_path / LOCK_NAME).read_text())
        assert owner['pid'] == os.getpid() and owner['host'] == socket.gethostname()
    finally:
        lock.release()


def test_lock_left_on_another_host_needs_take_over_lock(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(
        pid=4242, host='gpu-node-17', start=time.time(), command='python tools/train.py X')))
    with pytest.raises(WorkDirLockedError) as err:
        WorkDirLock(str(tmp_path)).acquire()
    msg = str(err.value)
    assert 'gpu-node-17' in msg and 'pid 4242' in msg and '--take-over-lock' in msg
    with WorkDirLock(str(tmp_path), take_over=True) as lock:
        assert '--take-over-lock' in lock.note and 'gpu-node-17' in lock.note


def test_lock_is_released_on_exceptions_and_keyboard_interrupt(tmp_path):
    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc):
            with WorkDirLock(str(tmp_path)):
                assert (tmp_path / LOCK_NAME).exists()
                raise exc('stop')
        assert not (tmp_path / LOCK_NAME).exists()
        WorkDirLock(str(tmp_path)).acquire().release()  # free again


def test_train_releases_the_lock_when_the_run_fails(tmp_path, tiny_imagenet):
    """An error inside the run (here: a data folder without class folders) still frees the
    work dir for the next run."""
    data = tmp_path / 'flat'
    (data / 'train').mkdir(parents=True)
    (data / 'train' / 'a.JPEG').write_bytes(b'x')
    with pytest.raises(Exception, match='class folders'):
        TOOL.main([tiny_config('pcae'), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                   f'train_dataloader.dataset.data_root={data}', 'train_cfg.max_epochs=1'])
    assert not (tmp_path / 'work' / LOCK_NAME).exists()


def test_only_rank_zero_takes_the_lock(monkeypatch):
    monkeypatch.setenv('RANK', '1')
    assert not is_rank_zero('pytorch')
    monkeypatch.setenv('RANK', '0')
    assert is_rank_zero('pytorch')
    monkeypatch.delenv('RANK')
    monkeypatch.setenv('SLURM_PROCID', '3')
    assert not is_rank_zero('slurm') and is_rank_zero('none')


def test_work_dir_below_a_file_is_named(tmp_path):
    """Second probe: --work-dir notes.txt/run (a folder below a file)."""
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(NotADirectoryError, match=r'cannot create the work dir .*Not a directory'):
        WorkDirLock(str(tmp_path / 'notes.txt' / 'run')).acquire()
