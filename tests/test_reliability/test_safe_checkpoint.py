"""SafeCheckpointHook: atomic files, no non-finite checkpoint, rotation keeps the last finite one;
incomplete files are named on --resume and skipped by auto-resume (issue 15)."""
import importlib.util
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch

import pcae_mm  # noqa: F401
from pcae_mm.utils.checkpoint import (CheckpointError, check_complete,
                                      find_last_complete_checkpoint, safe_load)

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
_spec = importlib.util.spec_from_file_location('ckpt_writer', osp.join(HERE, 'ckpt_writer.py'))
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)


def pointer(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    runner = writer.FakeRunner(tmp_path)
    hook = writer.make_hook('safe')
    hook.before_train(runner)
    writer.save(hook, runner, 1)
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth', 'last_checkpoint']
    assert pointer(tmp_path) == str(tmp_path / 'epoch_1.pth')
    check_complete(str(tmp_path / 'epoch_1.pth'))
    assert torch.equal(safe_load(str(tmp_path / 'epoch_1.pth'))['state_dict']['weight'],
                       runner.model.weight)


def test_nonfinite_weights_are_never_written_and_rotation_keeps_the_last_finite(tmp_path):
    runner = writer.FakeRunner(tmp_path)
    hook = writer.make_hook('safe', max_keep_ckpts=1)
    hook.before_train(runner)
    writer.save(hook, runner, 1)
    writer.save(hook, runner, 2)
    assert not osp.exists(tmp_path / 'epoch_1.pth')  # rotated out by a complete epoch_2
    with torch.no_grad():
        runner.model.weight[0, 0] = float('nan')
    for epoch in (3, 4, 5):  # the diverged run goes on: nothing written, nothing deleted
        writer.save(hook, runner, epoch)
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth', 'last_checkpoint']
    assert pointer(tmp_path) == str(tmp_path / 'epoch_2.pth')
    state = safe_load(str(tmp_path / 'epoch_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())


def kill_mid_save(kind, work):
    proc = subprocess.Popen([sys.executable, osp.join(HERE, 'ckpt_writer.py'), kind, str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                [ROOT, os.environ.get('PYTHONPATH', '')])))
    lines = []
    try:
        for line in proc.stdout:  # the writer prints WRITING half-way through epoch_2.pth
            lines.append(line)
            if line.strip() == 'WRITING':
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert lines and lines[-1].strip() == 'WRITING', ''.join(lines) + proc.stderr.read()


def test_kill_during_save_leaves_the_previous_checkpoint(tmp_path):
    kill_mid_save('safe', tmp_path)
    assert not osp.exists(tmp_path / 'epoch_2.pth')  # only a hidden temporary file
    assert pointer(tmp_path) == str(tmp_path / 'epoch_1.pth')
    check_complete(str(tmp_path / 'epoch_1.pth'))
    assert find_last_complete_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    # the next run of the hook removes the stale temporary file
    hook = writer.make_hook('safe')
    hook.before_train(writer.FakeRunner(tmp_path))
    assert not [n for n in os.listdir(tmp_path) if '.tmp' in n]


def test_partial_file_of_a_plain_checkpoint_hook_is_named_and_skipped(tmp_path):
    """mmengine's CheckpointHook writes in place: a kill leaves a partial epoch_2.pth (the
    issue's 0-byte epoch_3.pth). --resume of it names the file; auto-resume skips it."""
    kill_mid_save('plain', tmp_path)
    partial = str(tmp_path / 'epoch_2.pth')
    assert osp.exists(partial)
    with pytest.raises(CheckpointError, match='epoch_2.pth.*incomplete or corrupt'):
        check_complete(partial)
    with pytest.raises(CheckpointError, match='incomplete or corrupt'):
        safe_load(partial)
    assert find_last_complete_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')


def test_empty_and_truncated_files_are_named(tmp_path):
    empty = tmp_path / 'epoch_3.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='epoch_3.pth.*incomplete or corrupt.*empty'):
        check_complete(str(empty))
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(256, 256)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:good.stat().st_size * 2 // 3])
    with pytest.raises(CheckpointError, match='cut.pth.*incomplete or corrupt'):
        check_complete(str(cut))
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # a damaged byte inside the tensor data
    bad = tmp_path / 'bitflip.pth'
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match='bitflip.pth.*CRC'):
        check_complete(str(bad))
