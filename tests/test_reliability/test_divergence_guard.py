"""DivergenceGuardHook: a NaN run stops with a clear error and keeps a finite checkpoint."""
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import OptimWrapper

import pcae_mm  # noqa: F401
from pcae_mm.engine.hooks import DivergenceError, DivergenceGuardHook
from pcae_mm.utils.checkpoint import safe_load
from tests.helpers import tiny_config
from tools import train as train_tool

TINY_PCAE = tiny_config('pcae')


def fake_runner(optim_wrapper=None):
    return SimpleNamespace(iter=0, epoch=0, max_epochs=4, optim_wrapper=optim_wrapper,
                           message_hub=MessageHub.get_instance(f'guard{id(object())}'),
                           logger=MMLogger.get_instance('guard_test'))


def step(hook, runner, **losses):
    hook.after_train_iter(runner, 0, outputs={k: torch.tensor(v) for k, v in losses.items()})
    runner.iter += 1


def test_stops_after_patience_consecutive_bad_steps_naming_iteration_and_losses():
    hook, runner = DivergenceGuardHook(patience=3), fake_runner()
    runner.message_hub.update_info('last_ckpt', 'work/epoch_2.pth')
    step(hook, runner, loss=1.0, loss_rec=0.5)
    step(hook, runner, loss=float('nan'), loss_rec=0.5)
    step(hook, runner, loss=1.0, loss_rec=0.5)  # a finite step resets the count
    step(hook, runner, loss=float('nan'), loss_rec=float('inf'))
    step(hook, runner, loss=float('nan'), loss_rec=float('inf'))
    with pytest.raises(DivergenceError) as err:
        step(hook, runner, loss=float('nan'), loss_rec=float('inf'), loss_ptr=0.25)
    msg = str(err.value)
    assert 'iteration 6' in msg and '3 consecutive' in msg
    assert 'loss_rec=inf' in msg and 'loss_ptr=0.25' in msg and 'loss=nan' in msg
    assert 'work/epoch_2.pth' in msg and 'lr' in msg


def test_amp_scaler_skipped_steps_are_not_divergence():
    """A REAL loss scaler (DeviceAmpOptimWrapper: torch.amp.GradScaler('cpu'), fp16 autocast)
    skips overflowing steps; the guard counts them as AMP skips, not as divergence, from the
    very first iteration, and stops when they go on."""
    from pcae_mm.engine.optimizers import DeviceAmpOptimWrapper
    model = torch.nn.Linear(2, 2)
    wrapper = DeviceAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                    device='cpu')
    runner = fake_runner(wrapper)
    hook = DivergenceGuardHook(patience=2, max_amp_skips=5)
    hook.before_train(runner)

    def amp_step(overflow: bool):
        hook.before_train_iter(runner, 0)
        with wrapper.optim_context(model):
            loss = model(torch.ones(1, 2)).float().sum() * (float('inf') if overflow else 1.)
        wrapper.update_params(loss)
        step(hook, runner, loss=float(loss))

    for _ in range(4):  # overflowing fp16 steps: the scaler halves its scale and skips them
        amp_step(overflow=True)
    assert hook.bad_steps == 0 and hook.amp_skips == 4
    assert wrapper.loss_scaler.get_scale() == 2.**12
    amp_step(overflow=False)  # a step the scaler takes resets the count
    assert hook.amp_skips == 0 and hook.bad_steps == 0
    for _ in range(4):
        amp_step(overflow=True)
    with pytest.raises(DivergenceError, match='AMP loss scaler skipped 5 consecutive'):
        amp_step(overflow=True)


def test_nonfinite_gradients_skip_the_update_without_amp():
    model = torch.nn.Linear(2, 2)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    runner = fake_runner(wrapper)
    hook = DivergenceGuardHook(patience=2)
    hook.before_train(runner)
    before = model.weight.detach().clone()
    loss = (model(torch.tensor([[float('inf'), 1.]])) * 0).sum()  # nan gradients
    wrapper.update_params(loss)
    assert torch.equal(model.weight, before) and hook.skipped_updates == 1
    wrapper.update_params(model(torch.ones(1, 2)).sum())  # a finite step trains
    assert not torch.equal(model.weight, before)


def test_nan_run_stops_with_a_clear_error_and_keeps_its_last_finite_checkpoint(
        tmp_path, tiny_imagenet):
    """The issue's run: lr=1e3 on tiny PCAE went NaN, exited 0 and rotated away every finite
    checkpoint (max_keep_ckpts=3). Now it stops and every checkpoint left is finite."""
    work = tmp_path / 'nan'
    with pytest.raises(DivergenceError) as err:
        train_tool.main([
            TINY_PCAE, '--work-dir', str(work), '--cfg-options',
            f'train_dataloader.dataset.data_root={tiny_imagenet}', 'experiment_name=nanrun',
            'optim_wrapper.optimizer.lr=1e3', 'train_cfg.max_epochs=6',
            ])
    msg = str(err.value)
    assert 'training diverged at iteration' in msg and 'loss' in msg
    ckpts = [f for f in sorted(os.listdir(work)) if f.endswith('.pth')]
    assert ckpts  # (measured: stops in epoch 3, keeps epoch_1 and epoch_2)
    with open(work / 'last_checkpoint') as f:  # names the last finite checkpoint
        last = f.read().strip()
    assert osp.basename(last) == ckpts[-1] and last in msg
    for name in ckpts:  # every checkpoint left is finite
        state = safe_load(str(work / name))['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


class PoisonHook(Hook):
    """Sets one backbone weight to NaN after iteration ``at`` (a fault injected mid-run)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                runner.model.backbone.patch_embed.projection.weight[0, 0, 0, 0] = float('nan')


def test_weights_going_nan_mid_run_keep_the_last_finite_checkpoint(tmp_path, tiny_imagenet):
    from mmengine.config import Config
    from mmengine.runner import Runner
    tool = train_tool
    work = tmp_path / 'poisoned'
    args = tool.parse_args([
        TINY_PCAE, '--work-dir', str(work), '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_imagenet}', 'experiment_name=poisoned',
        'train_cfg.max_epochs=4', 'default_hooks.checkpoint.max_keep_ckpts=1'])
    runner = Runner.from_cfg(tool.merge_args(Config.fromfile(args.config), args))
    # 2 iterations per epoch: NaN weights from iteration 5 (epoch 3) on
    runner.register_hook(PoisonHook(at=5), priority='NORMAL')
    with pytest.raises(DivergenceError) as err:
        runner.train()
    assert 'iteration 8' in str(err.value)  # iterations 6, 7, 8: 3 consecutive bad steps
    assert [f for f in sorted(os.listdir(work)) if f.endswith('.pth')] == ['epoch_2.pth']
    with open(work / 'last_checkpoint') as f:
        assert f.read().strip() == str(work / 'epoch_2.pth')
    assert not (work / 'epoch_3.pth').exists()  # never written: non-finite weights
    state = safe_load(str(work / 'epoch_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
