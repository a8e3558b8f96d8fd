"""Stop-and-resume equals the straight run bit for bit on CPU, for every method (issue 15).

Each test trains a tiny config through tools/train.py's own argument handling, in-process:
M epochs straight, then N epochs + ``--resume`` to M epochs, and compares the final
checkpoints: weights (EMA teacher included), optimizer state, parameter-scheduler state and the
logged losses / learning rates of every iteration.
"""
import itertools
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import pcae_mm  # noqa: F401
from pcae_mm.utils.checkpoint import safe_load
from tests.helpers import random_teacher_options, tiny_config
from tools import train as TOOL

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = {k: tiny_config(k) for k in ('pcae', 'sdae', 'pr_mim', 'mr_mae')}
_names = itertools.count()




def train(config, work_dir, data_root, *options, resume=None, edit=None):
    """One tools/train.py invocation in-process (deterministic CPU); returns the runner."""
    argv = [config, '--work-dir', str(work_dir)]
    if resume is not None:
        argv += ['--resume'] + ([] if resume == 'auto' else [resume])
    argv += ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
             'randomness.seed=0', 'randomness.deterministic=True',
             f'experiment_name=exact{next(_names)}', 'default_hooks.logger.interval=1', *options]
    args = TOOL.parse_args(argv)
    cfg = TOOL.merge_args(Config.fromfile(args.config), args)
    if edit is not None:
        edit(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def assert_same(a, b, where=''):
    """Recursive bit-for-bit equality of checkpoint pieces."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f'{where}: max diff {(a.float() - b.float()).abs().max()}'
    elif isinstance(a, dict):
        assert set(a) == set(b), f'{where}: keys {set(a) ^ set(b)}'
        for k in a:
            assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def logged(ckpt, keys=('loss', 'lr')):
    scalars = ckpt['message_hub']['log_scalars']
    return {k: torch.as_tensor(v._log_history) for k, v in scalars.items()
            if any(s in k for s in keys)}


def assert_bit_identical(straight, resumed):
    assert_same(straight['state_dict'], resumed['state_dict'], 'state_dict')
    assert_same(straight['optimizer'], resumed['optimizer'], 'optimizer')
    assert_same(straight['param_schedulers'], resumed['param_schedulers'], 'param_schedulers')
    a, b = logged(straight), logged(resumed)
    assert a and set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f'{k}: straight {a[k].tolist()} resumed {b[k].tolist()}'
    assert straight['meta']['iter'] == resumed['meta']['iter']


def stop_and_resume(config, tmp_path, data_root, stop, total, *options, name='epoch',
                    edit=None, length_key='train_cfg.max_epochs'):
    straight_dir, resumed_dir = tmp_path / 'straight', tmp_path / 'resumed'
    train(config, straight_dir, data_root, f'{length_key}={total}', *options, edit=edit)
    train(config, resumed_dir, data_root, f'{length_key}={stop}', *options, edit=edit)
    runner = train(config, resumed_dir, data_root, f'{length_key}={total}', *options,
                   resume=str(resumed_dir / f'{name}_{stop}.pth'), edit=edit)
    assert runner.iter == safe_load(str(straight_dir / f'{name}_{total}.pth'))['meta']['iter']
    straight = safe_load(str(straight_dir / f'{name}_{total}.pth'))
    resumed = safe_load(str(resumed_dir / f'{name}_{total}.pth'))
    assert_bit_identical(straight, resumed)
    # the checkpoint the stopped run wrote equals the straight run's at the same point
    assert_same(safe_load(str(straight_dir / f'{name}_{stop}.pth'))['state_dict'],
                safe_load(str(resumed_dir / f'{name}_{stop}.pth'))['state_dict'], 'stop')
    return straight


@pytest.mark.parametrize('method', ['pcae', 'sdae', 'pr_mim'])
def test_epoch_stop_and_resume_is_bit_identical(method, tmp_path, tiny_imagenet):
    ckpt = stop_and_resume(TINY[method], tmp_path, tiny_imagenet, 1, 2)
    if method != 'pr_mim':
        assert int(ckpt['state_dict']['teacher.steps']) > 0  # the EMA teacher took part


def test_mr_mae_stop_and_resume_is_bit_identical(tmp_path, tiny_imagenet):
    stop_and_resume(TINY['mr_mae'], tmp_path, tiny_imagenet, 1, 2,
                    *random_teacher_options(TINY['mr_mae'], tmp_path))


def iteration_based(cfg):
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=cfg.train_cfg.max_iters)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
        dict(type='CosineAnnealingLR', T_max=4, by_epoch=False, begin=2, end=6),
    ]
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=3)
    cfg.log_processor = dict(by_epoch=False)


def test_iteration_based_stop_and_resume_is_bit_identical(tmp_path, tiny_imagenet):
    # 3 iterations + resume to 5 (crosses the 2-iteration epochs of the data loader, so the
    # resumed loop skips data across an epoch boundary)
    stop_and_resume(TINY['pcae'], tmp_path, tiny_imagenet, 3, 5, name='iter',
                    edit=iteration_based, length_key='train_cfg.max_iters')


def test_control_without_the_hook_resume_is_not_exact(tmp_path, tiny_imagenet):
    """The comparison above is sharp: without ExactResumeHook (mmengine alone) the resumed
    run draws other masks / crops and ends elsewhere."""
    with pytest.raises(AssertionError, match='max diff') as err:
        stop_and_resume(TINY['pcae'], tmp_path, tiny_imagenet, 1, 2,
                        'default_hooks.exact_resume=None')
    assert str(err.value).startswith('state_dict.')


def dist_train(work, data_root, epochs, *extra):
    """tools/dist_train.sh with 2 CPU processes (gloo, DDP), deterministic."""
    import os
    import subprocess
    from tests.helpers.cli import free_port
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY['pcae'], '2', '--work-dir',
         str(work), *extra, '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
         f'train_cfg.max_epochs={epochs}', 'randomness.seed=0', 'randomness.deterministic=True'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]


def test_two_process_stop_and_resume_is_bit_identical(tmp_path, tiny_imagenet):
    """Every rank's RNG state is saved and given back to that rank (2 CPU processes, DDP)."""
    dist_train(tmp_path / 'straight', tiny_imagenet, 2)
    dist_train(tmp_path / 'resumed', tiny_imagenet, 1)
    first = safe_load(str(tmp_path / 'resumed' / 'epoch_1.pth'))
    assert len(first['rng_state_per_rank']) == 2
    assert not torch.equal(first['rng_state_per_rank'][0]['torch'],
                           first['rng_state_per_rank'][1]['torch'])  # diff_rank_seed
    dist_train(tmp_path / 'resumed', tiny_imagenet, 2, '--resume',
               str(tmp_path / 'resumed' / 'epoch_1.pth'))
    assert_bit_identical(safe_load(str(tmp_path / 'straight' / 'epoch_2.pth')),
                         safe_load(str(tmp_path / 'resumed' / 'epoch_2.pth')))
