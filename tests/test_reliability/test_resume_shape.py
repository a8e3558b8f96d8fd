"""--resume never silently changes a run's schedule (issue 25): a finished run says so, a run
past its end or with another shape is refused naming the flag, --resume-reshape converts."""
import json
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import pcae_mm  # noqa: F401
from pcae_mm.engine.hooks import exact_resume_hook
from pcae_mm.engine.hooks.run_length import RUN_LENGTH_KEY, rescale_scheduler_state
from pcae_mm.utils.checkpoint import CheckpointError, safe_load
from pcae_mm.utils.run_shape import RunShapeError, check_resume
from tests.helpers import tiny_config
from tests.helpers.train_cli import run_train
from tools import train as TOOL

TINY_PCAE = tiny_config('pcae')


def copy(run, dst):
    shutil.copytree(run, str(dst))
    return dst


def test_checkpoints_record_the_run_shape(two_epoch_run):
    meta = safe_load(osp.join(two_epoch_run, 'epoch_2.pth'))['meta']
    assert meta['pcae_mm']['batch_size'] == 8 and meta['pcae_mm']['world_size'] == 1
    assert meta['pcae_mm']['iters_per_epoch'] == 2 and meta['iter'] == 4


def test_resume_of_a_finished_run_says_it_is_finished(two_epoch_run, tmp_path, tiny_imagenet):
    """Exit 0 (a job that re-runs the same --resume command until the run is complete ends
    cleanly) with a message, and nothing is built or written."""
    work = copy(two_epoch_run, tmp_path / 'work')
    before = sorted(p.name for p in work.iterdir())
    result = run_train(work, tiny_imagenet, '--resume', 'train_cfg.max_epochs=2')
    assert result.returncode == 0, result.output[-3000:]
    assert 'nothing to train' in result.stdout and 'finished' in result.stdout
    assert 'train_cfg.max_epochs=4' in result.stdout and 'tools/test.py' in result.stdout
    assert sorted(p.name for p in work.iterdir()) == before


def test_resume_past_the_end_is_refused(two_epoch_run, tmp_path, tiny_imagenet):
    work = copy(two_epoch_run, tmp_path / 'work')
    result = run_train(work, tiny_imagenet, '--resume', str(work / 'epoch_2.pth'),
                       'train_cfg.max_epochs=1')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('RunShapeError: cannot resume')
    assert 'epoch 2' in result.stderr and 'train_cfg.max_epochs=1' in result.stderr


def test_resume_with_another_batch_size_is_refused_naming_the_flag(two_epoch_run, tmp_path,
                                                                    tiny_imagenet):
    """The issue's silent case: the old per-epoch lr pace kept with another batch size."""
    work = copy(two_epoch_run, tmp_path / 'work')
    result = run_train(work, tiny_imagenet, '--resume', str(work / 'epoch_1.pth'),
                       'train_dataloader.batch_size=4', 'train_cfg.max_epochs=2')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    err = result.stderr
    assert 'batch size per process 8 -> 4' in err and '--resume-reshape' in err
    assert 'train_dataloader.batch_size=8' in err
    assert not [p for p in work.iterdir() if p.name == 'epoch_3.pth']


def test_resume_with_another_number_of_processes_is_refused(two_epoch_run):
    cfg = Config.fromfile(TINY_PCAE)
    with pytest.raises(RunShapeError, match='processes 1 -> 2.*--resume-reshape'):
        check_resume(cfg, osp.join(two_epoch_run, 'epoch_1.pth'), world_size=2)
    check_resume(cfg, osp.join(two_epoch_run, 'epoch_1.pth'), allow_reshape=True,
                 world_size=2)


def test_old_checkpoints_without_a_shape_record_warn_and_resume(two_epoch_run, tmp_path):
    ckpt = safe_load(osp.join(two_epoch_run, 'epoch_1.pth'))
    for key in ('batch_size', 'world_size', 'iters_per_epoch'):
        ckpt['meta']['pcae_mm'].pop(key)
    old = str(tmp_path / 'old.pth')
    torch.save(ckpt, old)
    cfg = Config.fromfile(TINY_PCAE)
    cfg.train_dataloader.batch_size = 4
    assert 'predates' in check_resume(cfg, old)  # a note, not a refusal


def lr_of_epoch(work, epoch):
    """The lr logged at every iteration of ``epoch`` (scalars.json of the run's last log)."""
    logs = sorted(p for p in work.iterdir() if p.is_dir() and p.name[:8].isdigit())
    rows = [json.loads(line) for line in
            (logs[-1] / 'vis_data' / 'scalars.json').read_text().splitlines()]
    return [r['lr'] for r in rows if r.get('epoch') == epoch and 'lr' in r]


def schedule_state(path):
    ckpt = safe_load(path)
    keys = ('begin', 'end', 'last_step', '_global_step', 'T_max', 'total_iters')
    return dict(
        iter=ckpt['meta']['iter'],
        schedulers=[{k: s[k] for k in keys if k in s} for s in ckpt['param_schedulers']],
        run_length=ckpt['message_hub']['runtime_info'][RUN_LENGTH_KEY],
        ema_steps=int(ckpt['state_dict']['teacher.steps']),
        lr=ckpt['param_schedulers'][-1]['_last_value'][0])


def test_resume_reshape_continues_as_a_run_of_the_new_shape(two_epoch_run, tmp_path,
                                                            tiny_imagenet):
    """Epoch 1 at batch 8 (2 iterations per epoch) + --resume-reshape at batch 4 (4 per epoch)
    ends epoch 2 exactly where a batch-4 run from the start does: iteration counter, every
    iteration-based scheduler, the lr of each iteration of epoch 2, the run length of the EMA
    schedule and the EMA teacher's update count."""
    straight = tmp_path / 'straight'
    result = run_train(straight, tiny_imagenet, 'train_dataloader.batch_size=4',
                       'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1')
    assert result.returncode == 0, result.output[-3000:]
    work = copy(two_epoch_run, tmp_path / 'reshaped')
    (work / 'epoch_2.pth').unlink()
    result = run_train(work, tiny_imagenet, '--resume', str(work / 'epoch_1.pth'),
                       '--resume-reshape', 'train_dataloader.batch_size=4',
                       'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1')
    assert result.returncode == 0, result.output[-3000:]
    assert 'iterations per epoch 2 -> 4' in result.output and 'converted' in result.output
    got, want = schedule_state(work / 'epoch_2.pth'), schedule_state(straight / 'epoch_2.pth')
    assert got['lr'] == pytest.approx(want['lr'], rel=1e-9)
    got.pop('lr'), want.pop('lr')
    assert got == want and want['iter'] == 8 and want['run_length']['iters'] == 16
    assert lr_of_epoch(work, 2) == pytest.approx(lr_of_epoch(straight, 2), rel=1e-9)
    assert len(lr_of_epoch(work, 2)) == 4


def test_control_without_the_conversion_the_schedule_is_distorted(two_epoch_run, tmp_path,
                                                                  tiny_imagenet, monkeypatch):
    """The same resume with the conversion switched off (what mmengine alone does): the
    schedulers keep the old iteration counts, so the comparison above is sharp."""
    monkeypatch.setattr(exact_resume_hook, 'rescale_checkpoint', lambda *a, **k: [])
    work = copy(two_epoch_run, tmp_path / 'control')
    (work / 'epoch_2.pth').unlink()
    args = TOOL.parse_args([TINY_PCAE, '--work-dir', str(work), '--resume',
                            str(work / 'epoch_1.pth'), '--resume-reshape', '--cfg-options',
                            f'train_dataloader.dataset.data_root={tiny_imagenet}',
                            'randomness.seed=0', 'train_dataloader.batch_size=4',
                            'train_cfg.max_epochs=2', 'experiment_name=reshape_control'])
    Runner.from_cfg(TOOL.merge_args(Config.fromfile(TINY_PCAE), args)).train()
    state = schedule_state(work / 'epoch_2.pth')
    assert state['schedulers'][1]['begin'] == 2  # the cosine still starts at the old iteration 2
    assert state['run_length']['iters'] == 8  # the EMA schedule at the old length


def test_hook_refuses_a_changed_dataset_size(two_epoch_run, tmp_path, tiny_imagenet):
    """Iterations per epoch also change with the dataset: only known once it is built, so the
    hook compares them (same batch size and processes, half the images)."""
    data = tmp_path / 'half'
    shutil.copytree(tiny_imagenet, data)
    for cls in sorted((data / 'train').iterdir())[:2]:
        shutil.rmtree(cls)
    (data / 'meta' / 'train.txt').unlink()
    args = TOOL.parse_args([TINY_PCAE, '--work-dir', str(tmp_path / 'work'), '--resume',
                            osp.join(two_epoch_run, 'epoch_1.pth'), '--cfg-options',
                            f'train_dataloader.dataset.data_root={data}',
                            'train_cfg.max_epochs=2', 'experiment_name=reshape_dataset'])
    runner = Runner.from_cfg(TOOL.merge_args(Config.fromfile(TINY_PCAE), args))
    with pytest.raises(CheckpointError, match='iterations per epoch 2 -> 1.*--resume-reshape'):
        runner.train()


def test_scheduler_state_conversion_keeps_the_position():
    """A cosine converted from epochs (begin=1 epoch, end=4 epochs) at 2 -> 4 iterations per
    epoch, 3 epochs in: every length doubles, the position follows the global step."""
    state = dict(T_max=6, begin=2, end=8, by_epoch=False, last_step=4, _global_step=6)
    assert rescale_scheduler_state(state, 2, 4)
    assert state == dict(T_max=12, begin=4, end=16, by_epoch=False, last_step=8,
                         _global_step=12)
    warm = dict(total_iters=1, begin=0, end=2, by_epoch=False, last_step=1, _global_step=6)
    rescale_scheduler_state(warm, 2, 4)
    assert warm['total_iters'] == 3 and warm['last_step'] == 3 and warm['end'] == 4
    by_epoch = dict(begin=0, end=4, by_epoch=True, last_step=2, _global_step=2)
    assert not rescale_scheduler_state(dict(by_epoch), 2, 4)
