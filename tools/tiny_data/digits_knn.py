"""Short pre-training runs on a real labelled image set, scored by online kNN.

Data: scikit-learn's handwritten digits (1797 real 8x8 images, 10 classes, shipped inside the
wheel), upsampled to 32 px: 1300 ``train`` images (pre-training set and kNN bank) and 497 held-out
``val`` queries (:class:`pcae_mm.datasets.DigitsDataset`). Model: each method's tiny config AS
SHIPPED (4-block 64-wide ViT, its EMA horizon, drop path, PCAE's similarity PTR in the recipe's 3
stages) at 32 px with patch 4: 64 patches, 16 visible, 48 masked; PCAE keeps 48 -> 24 -> 12 -> 6
targets (12.5% of the masked patches, the ViT-B recipe 12%). Training: batch 64 (21 iterations
per epoch), AdamW lr 1.5e-3, 1 warm-up epoch then cosine, the recipes' RandomResizedCrop scale
(0.2, 1) without flip. The :class:`~pcae_mm.engine.hooks.KNNEvalHook` scores the student before
the first step (random init) and after the last one, on the mean of the final patch tokens.
MR-MAE mimics random tiny teachers, or (``teacher=``, :func:`mr_mae_with_mae_teacher`) a tiny MAE
pre-trained here first. :func:`describe_run` names what produced a figure (config, paper's
method or not, EMA schedule at the run's length).

Used by the demo's learning check (tools/demo_stages.py), by tests/test_engine/test_knn_learning.py
(``from tools.tiny_data.digits_knn import pretrain_knn``), and runnable by hand from the
repository root::

    python -m tools.tiny_data.digits_knn pcae --epochs 40
"""
import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from mmengine.config import Config

from .configs import TINY_CONFIGS, tiny_config

IMG, PATCH = 32, 4  # 8x8 digits at 4x: 64 patches of ~1 digit pixel, 16 visible, 48 masked
TRAIN_IMAGES = 1300  # DigitsDataset's train split: the pre-training set and the kNN bank


def knn_hook(interval: int = 1000, img_size: int = IMG, **kwargs) -> dict:
    """KNNEvalHook on digits: bank = the 1300 train images, queries = the 497 val images."""
    def loader(split):
        return dict(batch_size=256, num_workers=0, persistent_workers=False,
                    sampler=dict(type='DefaultSampler', shuffle=False),
                    collate_fn=dict(type='default_collate'),
                    dataset=dict(type='DigitsDataset', split=split, size=img_size,
                                 pipeline=[dict(type='PackInputs')]))
    return dict(dict(type='KNNEvalHook', bank_dataloader=loader('train'),
                     query_dataloader=loader('val'), interval=interval, k=20, temperature=0.07,
                     pool='mean', eval_at_start=True, eval_teacher=False), **kwargs)


def digits_cfg(method: str, work_dir: str, epochs: int = 40, batch_size: int = 64,
               lr: float = 1.5e-3, seed: int = 0, model: Optional[dict] = None,
               hook: Optional[dict] = None, img_size: int = IMG, patch_size: int = PATCH,
               crop: Optional[tuple] = (0.2, 1.0), drop_path: Optional[float] = None) -> Config:
    """The method's tiny config, pre-training on the digits train split with the kNN hook.

    ``crop``: RandomResizedCrop's scale range (None: no crop); ``drop_path``: one rate for the
    encoder and the decoder instead of the config's (None: as shipped); ``model``: dotted
    overrides of ``cfg.model`` (an override makes the run not the shipped method)."""
    cfg = Config.fromfile(tiny_config(method))
    IMG, PATCH = img_size, patch_size  # noqa: N806
    num_patches = (IMG // PATCH)**2
    cfg.model.backbone.update(img_size=IMG, patch_size=PATCH)
    cfg.model.neck.update(num_patches=num_patches)
    if drop_path is not None:
        cfg.model.backbone.drop_path_rate = drop_path
        if 'drop_path_rate' in cfg.model.neck:
            cfg.model.neck.drop_path_rate = drop_path
    if method == 'pr_mim' or 'head' in cfg.model and cfg.model.head.get('patch_size'):
        cfg.model.head.patch_size = PATCH
        cfg.model.neck.out_dims = PATCH * PATCH * 3
    if 'teachers' in cfg.model:  # MR-MAE: random tiny frozen teachers (no download)
        for teacher in cfg.model.teachers.values():
            teacher.backbone.update(img_size=IMG, patch_size=PATCH)
    if model:  # dotted keys under model, e.g. {'teacher.momentum': 0.99}
        cfg.merge_from_dict({f'model.{k}': v for k, v in model.items()})
    cfg.train_dataloader = dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='DigitsDataset', split='train', size=IMG, pipeline=[
            dict(type='RandomResizedCrop', scale=IMG, crop_ratio_range=crop,
                 backend='pillow', interpolation='bicubic'),
            dict(type='PackInputs'),
        ] if crop else [dict(type='PackInputs')]))
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', T_max=max(epochs - 1, 1), by_epoch=True, begin=1,
             end=max(epochs, 2), convert_to_iter_based=True),
    ]
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.pop('auto_scale_lr', None)
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10**6)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] != 'MIMVisualizationHook'] + [
                            knn_hook(img_size=IMG, **(hook or {}))]
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    return cfg


def make_random_teachers(cfg: Config, work_dir: str) -> None:
    """MR-MAE's frozen teachers need checkpoints: random tiny ones (as the demo does)."""
    import torch
    from mmpretrain.registry import MODELS
    for name, teacher in cfg.model.get('teachers', {}).items():
        path = osp.join(work_dir, f'teacher_{name}.pth')
        torch.manual_seed(0)
        state = MODELS.build(teacher.backbone).state_dict()
        torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, path)
        teacher.checkpoint = path


def use_pretrained_teacher(cfg: Config, checkpoint: str, loss: str = 'smooth_l1',
                           loss_weight: float = 1.0) -> None:
    """MR-MAE with ONE frozen teacher instead of the random tiny CLIP / DINO pair: the tiny MAE
    backbone (same ViT as the student, plain forward, last-layer patch tokens) read from
    ``checkpoint`` (mmpretrain layout, ``backbone.`` keys), e.g. one saved by
    ``pretrain_knn('mae', ..., save_to=path)``."""
    backbone = cfg.model.backbone
    cfg.model.teachers = dict(mae=dict(
        type='FrozenTeacher', checkpoint=checkpoint, prefix='backbone.',
        backbone=dict(type='MIMViT', arch=backbone.arch, img_size=backbone.img_size,
                      patch_size=backbone.patch_size, masking=False, out_type='featmap')))
    cfg.model.mimic_heads = dict(mae=dict(type='MimicHead', loss=loss, loss_weight=loss_weight))


def save_backbone(model, path: str) -> None:
    """Save ``model.backbone`` in the mmpretrain layout (``backbone.`` keys) that
    :func:`use_pretrained_teacher` reads."""
    import torch
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    state = model.backbone.state_dict()
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, path)


def describe_run(method: str, model, overrides: Optional[dict] = None) -> Dict[str, str]:
    """What produced a learning figure: ``config`` (the tiny config), ``paper`` ('yes', or
    why not: the config's ``ablation`` note or the ``overrides``) and ``ema`` (the teacher's
    schedule at this run's length, '-' without an EMA teacher)."""
    cfg = Config.fromfile(tiny_config(method))
    paper = 'yes'
    if cfg.get('ablation'):
        paper = f"no: {cfg.ablation}"
    if overrides:
        paper = ('no: ' if paper == 'yes' else paper + '; ') + ', '.join(
            f'{k}={v!r}' for k, v in overrides.items())
    teacher = getattr(model, 'teacher', None)
    return dict(config=TINY_CONFIGS[method], paper=paper,
                ema=teacher.describe() if hasattr(teacher, 'describe') else '-')


def pretrain_knn(method: str, work_dir: str, teacher: Optional[str] = None,
                 mimic: Optional[dict] = None, save_to: Optional[str] = None,
                 hooks: Sequence = (), **kwargs) -> Dict[str, Tuple[float, float]]:
    """Pre-train and return ``{key: (random init, after)}`` kNN accuracies (%).

    MR-MAE mimics random tiny teachers unless ``teacher`` names a backbone checkpoint
    (:func:`use_pretrained_teacher`, ``mimic``: its ``loss`` / ``loss_weight``).
    ``save_to``: a path where the trained student backbone is saved (:func:`save_backbone`).
    ``hooks``: extra mmengine ``Hook`` objects registered on the runner (e.g. the probes of
    ``tools/analysis/target_leak.py``); ``kwargs``: :func:`digits_cfg`'s.
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import pcae_mm  # noqa: F401
    from pcae_mm.engine.hooks.knn_eval_hook import KNNEvalHook
    from pcae_mm.evaluation.knn import knn_summary
    cfg = digits_cfg(method, work_dir, **kwargs)
    if teacher:
        use_pretrained_teacher(cfg, teacher, **(mimic or {}))
    else:
        make_random_teachers(cfg, work_dir)
    before = set(DefaultScope._instance_dict)
    try:
        runner = Runner.from_cfg(cfg)
        for hook in hooks:
            runner.register_hook(hook)
        runner.train()
    finally:
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)
    if save_to:
        save_backbone(runner.model, save_to)
    hook = next(h for h in runner.hooks if isinstance(h, KNNEvalHook))
    summary = knn_summary(hook.history)
    scalars = runner.message_hub.log_scalars
    for key in ('loss', 'loss_pix', 'loss_mimic_mae'):  # first and last logged values
        if f'train/{key}' in scalars:
            values = scalars[f'train/{key}'].data[0]
            summary[key] = (float(values[0]), float(values[-1]))
    return summary


def mr_mae_with_mae_teacher(work_dir: str, teacher_epochs: int = 10, epochs: int = 40,
                            mimic: Optional[dict] = None, seed: int = 0, **kwargs
                            ) -> Tuple[Dict[str, Tuple[float, float]],
                                       Dict[str, Tuple[float, float]]]:
    """A meaningful frozen teacher without a download: pre-train the tiny MAE on the digits
    for ``teacher_epochs``, save its backbone, then pre-train MR-MAE from random init
    mimicking it. Returns ``(teacher's pretrain_knn result, MR-MAE's)``."""
    path = osp.join(work_dir, 'mae_teacher.pth')
    teacher = pretrain_knn('mae', osp.join(work_dir, 'teacher'), epochs=teacher_epochs,
                           seed=seed, save_to=path, **kwargs)
    student = pretrain_knn('mr_mae', osp.join(work_dir, 'mr_mae'), teacher=path, mimic=mimic,
                           epochs=epochs, seed=seed, **kwargs)
    return teacher, student


if __name__ == '__main__':
    import tempfile
    import time
    parser = argparse.ArgumentParser()
    parser.add_argument('method', choices=sorted(TINY_CONFIGS))
    parser.add_argument('--epochs', type=int, default=40)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=1.5e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--model', default='{}', help='python dict merged into cfg.model')
    parser.add_argument('--img-size', type=int, default=IMG)
    parser.add_argument('--patch-size', type=int, default=PATCH)
    parser.add_argument('--pool', default='mean', choices=['cls', 'mean'])
    parser.add_argument('--drop-path', default='config',
                        help="encoder and decoder drop path: a rate, or 'config' (as shipped)")
    parser.add_argument('--crop', type=float, nargs=2, default=(0.2, 1.0),
                        help='RandomResizedCrop scale range (the recipes\' 0.2 1.0)')
    parser.add_argument('--teacher-epochs', type=int, default=0,
                        help='mr_mae: mimic a tiny MAE pre-trained for this many epochs '
                        '(0: random tiny CLIP / DINO teachers)')
    parser.add_argument('--mimic', default='{}',
                        help="python dict: the MAE teacher's mimic head loss / loss_weight")
    args = parser.parse_args()
    t0 = time.time()
    common = dict(batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  model=eval(args.model), img_size=args.img_size, patch_size=args.patch_size,
                  hook=dict(pool=args.pool), crop=tuple(args.crop),
                  drop_path=None if args.drop_path == 'config' else float(args.drop_path))
    with tempfile.TemporaryDirectory() as tmp:
        if args.teacher_epochs:
            if args.method != 'mr_mae':
                parser.error('--teacher-epochs is for mr_mae')
            teacher, res = mr_mae_with_mae_teacher(
                tmp, args.teacher_epochs, args.epochs, mimic=eval(args.mimic), **common)
            print('mae teacher', {k: tuple(round(x, 3) for x in v)
                                  for k, v in teacher.items()}, flush=True)
        else:
            res = pretrain_knn(args.method, tmp, epochs=args.epochs, **common)
    print(args.method, {k: tuple(round(x, 3) for x in v) for k, v in res.items()},
          f'{time.time() - t0:.0f}s', flush=True)
