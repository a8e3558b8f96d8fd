"""AMP for real on a CPU: the shipped recipes' mixed-precision path with a REAL loss scaler.

``DeviceAmpOptimWrapper`` is mmengine's ``AmpOptimWrapper`` with the device made explicit:
``torch.amp.GradScaler('cpu')`` and CPU fp16 autocast. These tests drive it (no fake scaler)
through ``model.train_step`` and through the real Runner (``tools/train.py --amp`` without a
GPU): finite losses, the scale grows after ``growth_interval`` good steps and halves on an
overflow, an overflowing step changes no weight and no optimizer state, and it is counted
neither by the EMA teacher nor by the divergence guard.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

import pcae_mm  # noqa: F401
from pcae_mm.engine.hooks import DivergenceGuardHook, EMATeacherHook
from pcae_mm.engine.optimizers import DeviceAmpOptimWrapper
from tests.helpers import build_tiny_model, random_teacher_options, tiny_config
from tools import train as train_tool

#: the methods whose ViT-B recipes train with AmpOptimWrapper (fp16, dynamic loss scale)
METHODS = ['pcae', 'sdae', 'pr_mim', 'mr_mae']


def build(name, tmp_path):
    model, size = build_tiny_model(name, tmp_path)
    model.train()
    return model, size


def batch(size, n=4):
    return dict(inputs=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(n)])


def student_params(model):
    return [p for p in model.parameters() if p.requires_grad]


def poison_next_backward(param):
    """Make the next backward's gradient of ``param`` infinite (once)."""
    handle = []

    def hook(grad):
        handle[0].remove()
        return grad * float('inf')

    handle.append(param.register_hook(hook))


def test_device_amp_wrapper_is_mmengines_on_cpu():
    model = torch.nn.Linear(4, 4)
    wrapper = DeviceAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                    device='cpu')
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    assert wrapper.loss_scaler.is_enabled() and wrapper.loss_scaler.get_scale() == 2.**16
    assert wrapper.cast_dtype == torch.float16  # AmpOptimWrapper's GPU default, everywhere
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.float16
    bf16 = DeviceAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                 device='cpu', dtype='bfloat16', loss_scale=512.)
    with bf16.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    assert bf16.loss_scaler.get_scale() == 512.
    with pytest.raises(TypeError, match='loss_scale'):
        DeviceAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              loss_scale='static')
    # checkpoints carry the scaler, as mmengine's AmpOptimWrapper does
    state = bf16.state_dict()
    assert state['loss_scaler']['scale'] == 512.
    wrapper.load_state_dict(state)
    assert wrapper.loss_scaler.get_scale() == 512.


@pytest.mark.parametrize('name', METHODS)
def test_real_scaler_grows_backs_off_and_skips(name, tmp_path):
    torch.manual_seed(0)
    model, size = build(name, tmp_path)
    params = student_params(model)
    wrapper = DeviceAmpOptimWrapper(
        optimizer=torch.optim.AdamW(params, lr=1e-3), device='cpu',
        loss_scale=dict(init_scale=2.**10, growth_interval=2))
    scaler, data = wrapper.loss_scaler, batch(size)
    scales = []
    for _ in range(4):  # good steps: x2 after every 2 of them
        log_vars = model.train_step(data, wrapper)
        assert all(torch.isfinite(v) for k, v in log_vars.items() if 'loss' in k), name
        scales.append(scaler.get_scale())
    assert scales == [2.**10, 2.**11, 2.**11, 2.**12], (name, scales)
    steps = {id(p): float(s['step']) for p, s in wrapper.optimizer.state.items()}
    before = [p.detach().clone() for p in params]
    poison_next_backward(params[0])  # an fp16 overflow in one gradient
    log_vars = model.train_step(data, wrapper)
    assert torch.isfinite(log_vars['loss']), name  # the loss was fine, its gradient was not
    assert scaler.get_scale() == 2.**11, name  # backed off x0.5
    assert all(torch.equal(a, b) for a, b in zip(before, params)), f'{name}: weights moved'
    assert {id(p): float(s['step']) for p, s in wrapper.optimizer.state.items()} == steps
    model.train_step(data, wrapper)  # training goes on
    assert any(not torch.equal(a, b) for a, b in zip(before, params)), name
    assert all(torch.isfinite(p).all() for p in params), name


@pytest.mark.parametrize('name', ['pcae', 'mr_mae'])
def test_real_fp16_overflow_finds_a_scale(name, tmp_path):
    """No injection: a 2**40 scale overflows fp16 gradients for real; the scaler skips and
    halves until the gradients fit, then trains."""
    torch.manual_seed(0)
    model, size = build(name, tmp_path)
    params = student_params(model)
    wrapper = DeviceAmpOptimWrapper(optimizer=torch.optim.AdamW(params, lr=1e-3),
                                    device='cpu', loss_scale=dict(init_scale=2.**40))
    before = [p.detach().clone() for p in params]
    data = batch(size)
    model.train_step(data, wrapper)
    assert wrapper.loss_scaler.get_scale() == 2.**39, name  # the fp16 gradients overflowed
    assert all(torch.equal(a, b) for a, b in zip(before, params)), name
    for _ in range(30):
        model.train_step(data, wrapper)
        if any(not torch.equal(a, b) for a, b in zip(before, params)):
            break
    assert any(not torch.equal(a, b) for a, b in zip(before, params)), name
    assert 1. <= wrapper.loss_scaler.get_scale() < 2.**39
    assert all(torch.isfinite(p).all() for p in params), name


@HOOKS.register_module()
class OverflowAtIterHook(Hook):
    """Test hook: the gradients of the given iterations (0-based) overflow."""

    priority = 'LOWEST'

    def __init__(self, iters=()):
        self.iters = set(iters)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter in self.iters:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            poison_next_backward(next(p for p in model.parameters() if p.requires_grad))


def run_amp_runner(name, tmp_path, tiny_imagenet, overflow_iters, iters=4):
    """tools/train.py --amp on a machine without CUDA, in-process: the real Runner."""
    opts = [f'train_dataloader.dataset.data_root={tiny_imagenet}',
            'train_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=100']
    if name.startswith('mr'):
        opts += random_teacher_options(tiny_config(name), tmp_path)
    args = train_tool.parse_args([tiny_config(name), '--work-dir', str(tmp_path / 'work'), '--amp',
                                  '--cfg-options'] + opts)
    cfg = train_tool.merge_args(Config.fromfile(args.config), args)
    cfg.optim_wrapper.loss_scale = dict(init_scale=1024., growth_interval=2)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='OverflowAtIterHook', iters=list(overflow_iters))]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.param_scheduler = []
    cfg.experiment_name = f'amp_{name}_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name', METHODS)
def test_runner_amp_skipped_step_not_counted_by_ema_or_guard(name, tmp_path, tiny_imagenet):
    runner = run_amp_runner(name, tmp_path, tiny_imagenet, overflow_iters=[2])
    wrapper = runner.optim_wrapper
    assert type(wrapper) is DeviceAmpOptimWrapper and wrapper.device_type == 'cpu'
    assert wrapper.cast_dtype == torch.float16
    # 4 iterations: good, good (x2 -> 2048), overflow (x0.5 -> 1024, skipped), good
    assert wrapper.loss_scaler.get_scale() == 1024., name
    state = next(iter(wrapper.optimizer.state.values()))
    assert float(state['step']) == 3, name  # the optimizer stepped 3 times, not 4
    guard = next(h for h in runner.hooks if isinstance(h, DivergenceGuardHook))
    assert guard.bad_steps == 0 and guard.amp_skips == 0  # skip seen, then a good step
    teacher = getattr(runner.model, 'teacher', None)
    if teacher is not None:
        assert any(isinstance(h, EMATeacherHook) for h in runner.hooks)
        if teacher.update_by == 'iter':  # PCAE
            assert int(teacher.steps) == 3, name  # the skipped step moved no teacher
        else:  # SdAE: one update per epoch, the official schedule
            assert int(teacher.steps) == 1, name


def test_runner_amp_skip_is_seen_by_the_guard(tmp_path, tiny_imagenet):
    """Overflows in the first and the last two iterations: the guard counts the last 2
    consecutive AMP skips and 0 divergent steps; the teacher moved once. (The guard used to
    compare the scale with the previous iteration's and could not see a first-iteration
    skip.)"""
    runner = run_amp_runner('pcae', tmp_path, tiny_imagenet, overflow_iters=[0, 2, 3])
    guard = next(h for h in runner.hooks if isinstance(h, DivergenceGuardHook))
    assert guard.amp_skips == 2 and guard.bad_steps == 0
    assert int(runner.model.teacher.steps) == 1
    assert runner.optim_wrapper.loss_scaler.get_scale() == 128.  # 1024 halved 3 times


def test_train_without_amp_flag_falls_back_to_fp32(tmp_path):
    """A shipped AMP recipe on a CPU: fp32 by default (a warning), the real CPU AMP with
    --amp."""
    config = osp.join(osp.dirname(tiny_config('pcae')), 'pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    if torch.cuda.is_available():
        pytest.skip('a GPU keeps AmpOptimWrapper')
    with pytest.warns(UserWarning, match='pass --amp'):
        cfg = train_tool.merge_args(Config.fromfile(config), train_tool.parse_args(
            [config, '--work-dir', str(tmp_path / 'a')]))
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    cfg = train_tool.merge_args(Config.fromfile(config), train_tool.parse_args(
        [config, '--work-dir', str(tmp_path / 'b'), '--amp']))
    assert cfg.optim_wrapper.type == 'DeviceAmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic' and cfg.optim_wrapper.device == 'cpu'
