"""Build what a benchmark needs from any config: model, optimizer wrapper, hooks, a batch.

Configs are local files or ``package::relative/path.py`` (e.g. mmpretrain's stock MAE). Only
``model``, ``data_preprocessor``, ``optim_wrapper`` and ``custom_hooks`` are used, so the
``_scope_`` that mmengine stamps into ``pkg::`` bases (which breaks ``default_collate``) never
matters: no dataloader is built.
"""
import copy
import os.path as osp
from types import SimpleNamespace
from typing import Any, Dict, List

import torch
from mmengine.config import Config

AMP_DTYPES = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def register_all(log_level: str = 'WARNING') -> None:
    """Register mmpretrain's and pcae_mm's modules, make ``mmpretrain`` the default scope.

    Args:
        log_level (str): Level of the mmengine logger that weight initialisation reports to
            (the per-tensor init messages of every built model are noise in a benchmark).
    """
    from mmengine.logging import MMLogger
    from mmpretrain.utils import register_all_modules

    import pcae_mm  # noqa: F401
    register_all_modules(init_default_scope=True)
    if not MMLogger.check_instance_created('pcae_mm_benchmark'):
        MMLogger.get_instance('pcae_mm_benchmark', log_level=log_level)


def load_config(spec: str) -> Config:
    """Load a config file, or a packaged one written ``package::relative/path.py``.

    Args:
        spec (str): Path, or a packaged config such as
            ``'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'``.

    Returns:
        Config.
    """
    if '::' in spec:
        import importlib.util
        package, rel = spec.split('::', 1)
        # where the package is imported from (mmengine's get_installed_path needs
        # pkg_resources and an installed distribution; carried wheels are neither)
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f'config {spec!r}: package {package!r} is not installed')
        root = list(found.submodule_search_locations)[0]
        path = osp.join(root, '.mim', 'configs', rel)
        if not osp.isfile(path):
            raise FileNotFoundError(f'config {spec!r}: {package} has no config {rel!r} '
                                    f'(looked for {path})')
        return Config.fromfile(path)
    if not osp.isfile(spec):
        raise FileNotFoundError(f'config file {spec!r} does not exist')
    return Config.fromfile(spec)


def config_name(spec: str) -> str:
    """Short display name: the config file name without ``.py``."""
    return osp.splitext(osp.basename(spec.split('::')[-1]))[0]


def _strip_pretrained(obj: Any) -> Any:
    """Drop ``Pretrained`` init_cfgs: speed does not depend on weights; nothing is read."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == 'init_cfg' and isinstance(v, dict) and v.get('type') == 'Pretrained':
                continue
            if k == 'init_cfg' and isinstance(v, list):
                v = [c for c in v if not (isinstance(c, dict) and c.get('type') == 'Pretrained')]
            out[k] = _strip_pretrained(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_pretrained(v) for v in obj)
    return obj


def random_teacher_checkpoints(cfg: Config, out_dir: str) -> List[str]:
    """Give frozen teachers whose checkpoint file is missing random weights (in ``out_dir``).

    MR-MAE's :class:`FrozenTeacher` loads its weights at build time and never downloads them.
    Speed and FLOPs do not depend on the values, so for a benchmark a checkpoint of the
    teacher's own randomly initialised backbone (saved under its ``prefix``) stands in.

    Returns:
        list[str]: Names of the teachers that got random weights.
    """
    from mmpretrain.registry import MODELS
    teachers = cfg.model.get('teachers') or {}
    replaced = []
    for name, t in teachers.items():
        if not isinstance(t, dict) or 'backbone' not in t:
            continue
        ckpt = t.get('checkpoint')
        if ckpt and osp.isfile(ckpt):
            continue
        backbone = MODELS.build(copy.deepcopy(t['backbone']))
        prefix = t.get('prefix', '') or ''
        path = osp.join(out_dir, f'random_teacher_{name}.pth')
        torch.save({prefix + k: v for k, v in backbone.state_dict().items()}, path)
        t['checkpoint'] = path
        replaced.append(name)
    return replaced


def build_model(cfg: Config, device: torch.device, init: bool = True) -> torch.nn.Module:
    """Build and initialise ``cfg.model`` with mmpretrain's MODELS registry, on ``device``.

    ``Pretrained`` init_cfgs are removed (random weights: timings and FLOPs do not depend on
    them); the config's top-level ``data_preprocessor`` is used when the model has none, as
    mmengine's Runner does.

    Args:
        cfg (Config): The config.
        device (torch.device): Target device.
        init (bool): Run ``init_weights`` (teachers are synced there). Counting MACs does not
            need it. Defaults to True.
    """
    from mmpretrain.registry import MODELS
    if cfg.get('model') is None:
        raise KeyError('config has no `model` to benchmark')
    model_cfg = _strip_pretrained(copy.deepcopy(cfg.model.to_dict()
                                                if hasattr(cfg.model, 'to_dict') else cfg.model))
    if cfg.get('data_preprocessor') is not None:
        pre = copy.deepcopy(cfg.data_preprocessor)
        model_cfg.setdefault('data_preprocessor',
                             pre.to_dict() if hasattr(pre, 'to_dict') else pre)
    model = MODELS.build(model_cfg)
    if init:
        model.init_weights()
    return model.to(device)


def build_optim_wrapper(cfg: Config, model: torch.nn.Module, device: torch.device,
                        amp: str = 'none'):
    """The config's optimizer (and its constructor, e.g. layer decay), with our precision.

    Args:
        amp (str): ``'none'``, ``'fp16'`` or ``'bf16'``. fp16 on CUDA uses mmengine's
            ``AmpOptimWrapper`` (dynamic loss scale: fp16 needs it). bf16 needs no loss scaling:
            a plain ``OptimWrapper``, the caller wraps the step in ``torch.autocast``
            (:func:`autocast_context`). mmengine's ``AmpOptimWrapper`` would add a
            ``GradScaler`` whose inf check waits for the GPU once per step.
    """
    from mmengine.optim import build_optim_wrapper as _build
    if amp not in AMP_DTYPES:
        raise ValueError(f'amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}')
    ow = cfg.get('optim_wrapper')
    ow = copy.deepcopy(ow.to_dict() if hasattr(ow, 'to_dict') else ow) if ow else dict(
        optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05))
    ow.pop('loss_scale', None)
    ow.pop('dtype', None)
    if amp == 'fp16' and device.type == 'cuda':
        ow.update(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
    else:
        ow['type'] = 'OptimWrapper'
    return _build(model, ow)


def autocast_context(device: torch.device, amp: str):
    """``torch.autocast`` in bf16 on any device; a no-op for fp32 and CUDA fp16 (the
    ``AmpOptimWrapper`` autocasts)."""
    if amp == 'fp16' and device.type != 'cuda':
        raise ValueError('fp16 autocast needs a CUDA device (loss scaling); use --amp bf16 on '
                         'CPU')
    if amp != 'bf16':
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def infer_img_size(model: torch.nn.Module, default: int = 224) -> int:
    """Input size of the model's backbone (``img_size`` attribute), else ``default``."""
    size = getattr(getattr(model, 'backbone', None), 'img_size', default)
    if isinstance(size, (tuple, list)):
        if size[0] != size[1]:
            raise ValueError(f'non-square backbone img_size {size}: pass --img-size')
        size = size[0]
    return int(size)


def make_batch(batch_size: int, img_size: int, num_classes: int = 1000,
               seed: int = 0, pin: bool = False) -> Dict[str, Any]:
    """A batch as ``default_collate`` gives it: uint8 ``B x 3 x S x S`` and labelled DataSamples.

    (mmpretrain's ``SelfSupDataPreprocessor`` reads a list of tensors as several views, so the
    images are stacked as the configs' ``collate_fn=default_collate`` does.) ``pin`` puts the
    images in page-locked memory, as a ``pin_memory=True`` dataloader does for a GPU.
    """
    from mmpretrain.structures import DataSample
    if batch_size < 1:
        raise ValueError(f'batch size must be >= 1, got {batch_size}')
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 256, (batch_size, 3, img_size, img_size), dtype=torch.uint8,
                           generator=g)
    labels = torch.randint(0, num_classes, (batch_size, ), generator=g)
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    if pin:
        inputs = inputs.pin_memory()
    return dict(inputs=inputs, data_samples=samples)


def num_classes_of(model: torch.nn.Module, default: int = 1000) -> int:
    head = getattr(model, 'head', None)
    return int(getattr(head, 'num_classes', default) or default)


ITER_METHODS = ('before_train_iter', 'after_train_iter', 'before_train_epoch',
                'after_train_epoch')


def _overrides(hook, method: str) -> bool:
    """Whether ``hook`` implements ``method`` (instead of mmengine's no-op)."""
    from mmengine.hooks import Hook
    return getattr(type(hook), method) is not getattr(Hook, method)


class HookDriver:
    """Run a config's ``custom_hooks`` around benchmark steps, as the training loop would.

    The hooks see a minimal runner (``model``, ``iter``, ``epoch``, ``max_iters``,
    ``max_epochs``) placed at the middle of a ``max_iters``-long schedule, so e.g. the EMA
    teacher update (``EMATeacherHook``) is part of every timed step and PR-MIM's progressive
    share is at its mid-training value. Hooks that only check things before training and need
    more of the runner (e.g. the dataloader) are skipped and listed in :attr:`skipped`.

    Args:
        cfg (Config): The config (its ``custom_hooks``).
        model (nn.Module): The built model.
        max_iters (int): Schedule length to pretend. Defaults to 100000.
    """

    def __init__(self, cfg: Config, model: torch.nn.Module, max_iters: int = 100000) -> None:
        from mmpretrain.registry import HOOKS
        self.runner = SimpleNamespace(model=model, iter=max_iters // 2, epoch=0,
                                      max_iters=max_iters, max_epochs=100)
        self.hooks, self.skipped = [], []
        for hook_cfg in cfg.get('custom_hooks', None) or []:
            hook = HOOKS.build(copy.deepcopy(hook_cfg))
            try:
                hook.before_train(self.runner)
            except AttributeError as e:
                if any(_overrides(hook, m) for m in ITER_METHODS):
                    raise RuntimeError(
                        f'{type(hook).__name__} acts every iteration but needs more of the '
                        f'runner than the benchmark provides ({e}); remove it with '
                        '--cfg-options custom_hooks=[] if it does not affect speed') from e
                self.skipped.append(type(hook).__name__)  # a start-of-training check only
                continue
            self.hooks.append(hook)

    def _call(self, name: str, **kwargs) -> None:
        for hook in self.hooks:
            getattr(hook, name)(self.runner, **kwargs)

    def before_iter(self) -> None:
        self._call('before_train_iter', batch_idx=0, data_batch=None)

    def after_iter(self) -> None:
        self._call('after_train_iter', batch_idx=0, data_batch=None, outputs=None)


def make_train_step(model: torch.nn.Module, optim_wrapper, data: Dict, hooks: HookDriver,
                    device: torch.device, amp: str):
    """A closure doing one full training iteration: hooks, preprocess, forward, backward, step."""

    def step() -> Dict[str, torch.Tensor]:
        hooks.before_iter()
        with autocast_context(device, amp):
            log_vars = model.train_step(data, optim_wrapper)
        hooks.after_iter()
        return log_vars

    return step


def describe_device(device: torch.device) -> str:
    """Human-readable device name, e.g. ``NVIDIA H100 80GB HBM3`` or ``CPU (2 threads)``."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    import platform
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'CPU {name} ({torch.get_num_threads()} threads)'


def resolve_device(name: str) -> torch.device:
    """``'auto'`` -> cuda when available else cpu; a CUDA request without a GPU is an error."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'--device {name}: no CUDA device is available')
    return device


__all__ = [
    'AMP_DTYPES', 'register_all', 'load_config', 'config_name', 'build_model',
    'build_optim_wrapper', 'autocast_context', 'infer_img_size', 'make_batch', 'HookDriver',
    'make_train_step', 'describe_device', 'resolve_device', 'num_classes_of'
]
