"""The demo's stages (tools/demo.py runs them in order and draws the terminal and the table).

Each stage is a function from plain inputs (paths, sizes, counts) to a result dict, and takes
``add_progress``: called with the stage's mmengine Runner before training (the demo registers
its progress bar there; None runs without). Nothing here prints to the terminal.

* :func:`build_datasets`: small ImageNet / COCO / ADE20K sets in their real formats;
* :func:`pretrain`: the method's tiny config on the ImageNet set, with the labelled picture
  and the loss curve;
* :func:`learn_digits`: the learning check, kNN of the features on held-out digits at random
  init and after pre-training on the digits;
* :func:`compare`: the methods at equal training FLOPs on the digits (``--compare``);
* :func:`downstream_config`: fine-tuning, Mask R-CNN or UperNet, the shipped benchmark config
  shrunk to CPU size and started from the pre-trained checkpoint, run by :func:`train`.
"""
import os
import os.path as osp
from typing import Callable, Dict, Optional

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from pcae_mm.evaluation.knn import knn_summary
from pcae_mm.visualization.curves import plot_curves

from .tiny_data import (COCO_CLASSES, make_tiny_ade, make_tiny_coco, make_tiny_imagenet,
                        prepare_for_runner, tiny_classification, tiny_config, tiny_mask_rcnn,
                        tiny_upernet)
from .tiny_data.digits_knn import (describe_run, digits_cfg, save_backbone,
                                   use_pretrained_teacher)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The shipped benchmark configs the downstream stages shrink, by stage.
BENCH = {
    'classification': 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py',
    'mask_rcnn':
    'configs/benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py',
    'upernet':
    'configs/benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py',
}
#: The validation metrics each downstream stage reports.
METRICS = {
    'classification': ['accuracy/top1'],
    'mask_rcnn': ['coco/bbox_mAP', 'coco/segm_mAP'],
    'upernet': ['mIoU', 'aAcc'],
}
#: Where each downstream stage trains, under the demo's work dir.
WORK_DIRS = dict(classification='finetune', mask_rcnn='mask_rcnn', upernet='upernet')
#: The stages that need mmcv's compiled ops (mmdet / mmseg models): on a new machine they wait
#: for the set-up's background build (tools/setup_state.py); the others run on mmcv-lite.
NEEDS_OPS = ('mask_rcnn', 'upernet')

AddProgress = Optional[Callable[[Runner], None]]


def train(cfg: Config, add_progress: AddProgress = None,
          keep: Optional[Callable[[Runner], dict]] = None) -> dict:
    """Train ``cfg`` (the configs validate at the end) in this process.

    Returns:
        dict: the last validation metrics (``val/`` stripped), ``loss_first`` / ``loss_last``
        (None without a logged loss), ``log_dir`` and what ``keep(runner)`` returns.
    """
    before = set(DefaultScope._instance_dict)
    try:
        runner = Runner.from_cfg(cfg)
        if add_progress is not None:
            add_progress(runner)
        runner.train()
        scalars = runner.message_hub.log_scalars
        metrics = {k[len('val/'):]: float(v.current()) for k, v in scalars.items()
                   if k.startswith('val/')}
        loss = scalars.get('train/loss')
        first_last = (float(loss.data[0][0]), float(loss.data[0][-1])) if loss else (None, None)
        extra = keep(runner) if keep is not None else {}
        return dict(metrics, loss_first=first_last[0], loss_last=first_last[1],
                    log_dir=runner.log_dir, **extra)
    finally:  # a Runner leaves its toolbox scope as the default: restore mmpretrain's
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)


# ------------------------------------------------------------------ datasets
def build_datasets(data_root: str, images_per_class: int, coco: bool,
                   ade20k: bool) -> Dict[str, str]:
    """``{'imagenet': root, 'coco': root, 'ade20k': root}`` (COCO / ADE20K when asked for):
    4 ImageNet classes of ``images_per_class`` training and 4 val images at 128 px; 16 train
    and 4 val COCO / ADE20K images."""
    data = dict(imagenet=make_tiny_imagenet(
        osp.join(data_root, 'imagenet'), num_classes=4, train_per_class=images_per_class,
        val_per_class=4, size=128))
    if coco:
        data['coco'] = make_tiny_coco(osp.join(data_root, 'coco'), num_train=16, num_val=4)
    if ade20k:
        data['ade20k'] = make_tiny_ade(osp.join(data_root, 'ade20k'), num_train=16, num_val=4)
    return data


# ------------------------------------------------------------------ pre-training
def make_tiny_teachers(cfg: Config, work_dir: str) -> Dict[str, str]:
    """MR-MAE needs frozen teacher checkpoints: random tiny ones (demo only), written under
    ``work_dir/tiny_teachers`` with the file names of the tiny config (whose paths point at the
    default work dir's copies) and set in ``cfg``. Returns ``{teacher name: path}``."""
    from mmpretrain.registry import MODELS
    paths = {}
    for name, teacher in cfg.model.teachers.items():
        path = osp.join(work_dir, 'tiny_teachers', osp.basename(teacher.checkpoint))
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not osp.isfile(path):
            torch.manual_seed(0)
            state = MODELS.build(teacher.backbone).state_dict()
            torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, path)
        teacher.checkpoint = path
        paths[name] = path
    return paths


def pretrain(method: str, imagenet: str, work_dir: str, epochs: int,
             add_progress: AddProgress = None) -> dict:
    """Pre-train ``method``'s tiny config on the ImageNet set for ``epochs``.

    Returns:
        dict: :func:`train`'s result and ``checkpoint`` (the last epoch's), ``arch`` /
        ``img_size`` (the backbone's, for the downstream stages), ``picture`` (the labelled
        mask / kept tokens / prediction picture, None if not drawn), ``curves`` (the loss
        plot), ``work_dir`` and ``teachers`` (MR-MAE: ``{name: path}`` of the random tiny
        teachers; else empty).
    """
    cfg = Config.fromfile(tiny_config(method))
    cfg.train_dataloader.dataset.data_root = imagenet
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.logger.interval = 4
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    picture = osp.join(work_dir, 'pictures', f'{method}.png')
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='MIMVisualizationHook', interval=epochs, num_images=4, out_file=picture)]
    teachers = make_tiny_teachers(cfg, work_dir) if 'teachers' in cfg.model else {}
    work = osp.join(work_dir, f'{method}_pretrain')
    cfg = prepare_for_runner(cfg, work)
    result = train(cfg, add_progress)
    curves = osp.join(work_dir, 'pictures', f'{method}_curves.png')
    plot_curves(result['log_dir'], curves,
                title=f'tiny {method} pre-training (demo: tiny data, few iterations)')
    b = cfg.model.backbone
    return dict(result, checkpoint=osp.join(work, f'epoch_{epochs}.pth'), arch=dict(b.arch),
                img_size=b.img_size, picture=picture if osp.isfile(picture) else None,
                curves=curves, work_dir=work, teachers=teachers)


# ------------------------------------------------------------------ learning check
def knn_result(runner: Runner) -> dict:
    """``{'knn': {key: [random init, after]}}`` of the Runner's KNNEvalHook (empty without)."""
    hooks = [h for h in runner.hooks if type(h).__name__ == 'KNNEvalHook']
    if not hooks:
        return {}
    return dict(knn={k: list(v) for k, v in knn_summary(hooks[0].history).items()})


def learn_digits(method: str, work_dir: str, epochs: int, add_progress: AddProgress = None,
                 teacher: Optional[str] = None, save_to: Optional[str] = None) -> dict:
    """Pre-train ``method``'s tiny config on the digits; kNN at random init and after.

    ``teacher``: MR-MAE mimics this backbone checkpoint. ``save_to``: keep the trained backbone
    there (the MAE that MR-MAE mimics).

    Returns:
        dict: :func:`train`'s result with ``knn``: ``{'student_top1': [init, after], ...}``
        and ``run``: what produced it (:func:`~.tiny_data.digits_knn.describe_run`: the
        config, the paper's method or not, the EMA schedule at this run's length).
    """
    cfg = digits_cfg(method, work_dir, epochs=epochs)
    if teacher:
        use_pretrained_teacher(cfg, teacher)
    cfg = prepare_for_runner(cfg, work_dir)

    def keep(runner: Runner) -> dict:
        if save_to:
            save_backbone(runner.model, save_to)
        run = describe_run(method, runner.model)
        if teacher:
            run['paper'] = ('no: mimics the tiny MAE pre-trained on the digits here (the '
                            "paper's CLIP / DINO teachers need a download)")
        return dict(knn_result(runner), run=run)

    return train(cfg, add_progress, keep=keep)


def compare(work_dir: str, budget_epochs: float) -> dict:
    """Equal-compute comparison of the paper methods on the digits
    (``tools/analysis/compare_methods.py``: kNN top-1 vs counted training FLOPs), budget
    ``budget_epochs`` epochs of MAE, as many methods at once as there are cores (up to 4).
    Returns its JSON record (``files``: the table, the plot)."""
    from .analysis.compare_methods import compare as compare_methods
    return compare_methods(out_dir=osp.join(work_dir, 'compare'), budget_epochs=budget_epochs,
                           jobs=max(1, min(4, os.cpu_count() or 1)))


# ------------------------------------------------------------------ downstream
def downstream_config(name: str, pre: dict, data: Dict[str, str], work_dir: str,
                      length: int) -> Config:
    """The CPU-sized config of the downstream stage ``name``, started from the pre-training.

    Args:
        name (str): ``'classification'`` (``length`` epochs on the ImageNet set),
            ``'mask_rcnn'`` (``length`` iterations on COCO) or ``'upernet'`` (``length``
            iterations on ADE20K).
        pre (dict): :func:`pretrain`'s result (``checkpoint``, ``arch``, ``img_size``).
        data (dict): :func:`build_datasets`'s result.
        work_dir (str): The demo's work dir (the stage trains in ``WORK_DIRS[name]`` there).
    """
    cfg = Config.fromfile(osp.join(ROOT, BENCH[name]))
    ckpt, arch, img_size = pre['checkpoint'], pre['arch'], pre['img_size']
    work = osp.join(work_dir, WORK_DIRS[name])
    if name == 'classification':
        return tiny_classification(cfg, ckpt, data['imagenet'], arch, img_size, num_classes=4,
                                   work_dir=work, epochs=length)
    if name == 'mask_rcnn':
        return tiny_mask_rcnn(cfg, ckpt, data['coco'], arch, img_size, COCO_CLASSES, work,
                              iters=length)
    return tiny_upernet(cfg, ckpt, data['ade20k'], arch, img_size, work, iters=length)
