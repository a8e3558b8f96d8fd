"""The tiny pre-training configs (one list) and CPU-sized versions of the benchmark configs
(configs/benchmarks), for the demo and the tests.

Each function takes the shipped ViT-B benchmark config and changes only sizes, data paths and
iteration counts, so the demo and the tests run the same code path (the same backbone, loading,
neck, heads, evaluator) as the full recipes.
"""
import os.path as osp
import uuid
from typing import Sequence

from mmengine.config import Config

from pcae_mm.utils.runtime import adapt_to_device, set_dataloader_defaults

from .downstream import ADE_CLASSES, ADE_COLOURS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Every tiny CPU pre-training config (configs/*/*tiny*.py), by method (the demo's ``--method``
#: spelling), relative to the repository root: the one list the demo, the digits learning check
#: and the tests use (tests/test_configs/test_tiny_configs.py checks it against the disk).
TINY_CONFIGS = {
    'pcae': 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    # ablation, not the paper's PCAE: PTR survivors at random (configs/pcae/README.md)
    'pcae_random_ptr': 'configs/pcae/pcae_vit-tiny-p16-random-ptr_1xb8-coslr-4e_tiny-in1k.py',
    'sdae': 'configs/sdae/sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'mae': 'configs/pr_mim/mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'pr_mim': 'configs/pr_mim/pr-mim_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'pr_mim_sdae': 'configs/pr_mim/pr-mim-sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'mr_mae': 'configs/mr_mae/mr-mae_vit-tiny-p16_1xb8-coslr-2e_tiny-in1k.py',
    'mr_mcmae': 'configs/mr_mae/mr-mcmae_convvit-tiny_1xb8-coslr-2e_tiny-in1k.py',
}
#: The methods the demo (``--method``) and the digits learning check run: one per paper method
#: on the plain ViT (the fine-tune / Mask R-CNN / UperNet stages load a ViT).
DEMO_METHODS = ('pcae', 'sdae', 'pr_mim', 'mae', 'mr_mae')


def tiny_config(method: str) -> str:
    """The absolute path of ``method``'s tiny config (a key of :data:`TINY_CONFIGS`)."""
    if method not in TINY_CONFIGS:
        raise KeyError(f'no tiny config for {method!r}: choose one of {sorted(TINY_CONFIGS)}')
    return osp.join(ROOT, TINY_CONFIGS[method])


def prepare_for_runner(cfg: Config, work_dir: str) -> Config:
    """What tools/train.py does to a config before building the Runner, for in-process runs."""
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.experiment_name = f'run_{uuid.uuid4().hex[:8]}'  # a distinct DefaultScope per runner
    set_dataloader_defaults(cfg)
    return adapt_to_device(cfg)


def tiny_classification(cfg: Config, ckpt: str, data_root: str, arch: dict, img_size: int,
                        num_classes: int, work_dir: str, epochs: int = 1,
                        batch_size: int = 8) -> Config:
    """ImageNet fine-tune / linear-probe config on a tiny ImageNet-layout set."""
    cfg.model.backbone.update(arch=arch, img_size=img_size)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    cfg.model.head.update(num_classes=num_classes, in_channels=arch['embed_dims'])
    if cfg.model.get('neck') is not None:
        cfg.model.neck.input_features = arch['embed_dims']
    cfg.data_preprocessor.num_classes = num_classes
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        for t in loader.dataset.pipeline:
            if t.type == 'RandomResizedCrop':
                t.scale = img_size
            if t.type == 'ResizeEdge':
                t.scale = img_size + img_size // 7
            if t.type == 'CenterCrop':
                t.crop_size = img_size
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_cfg.max_epochs = epochs
    _shorten_schedule(cfg, epochs, by_epoch=True)
    cfg.default_hooks.logger.interval = 1
    return prepare_for_runner(cfg, work_dir)


def tiny_mask_rcnn(cfg: Config, ckpt: str, data_root: str, arch: dict, img_size: int,
                   classes: Sequence[str], work_dir: str, size: int = 128, iters: int = 2,
                   width: int = 32) -> Config:
    """Mask R-CNN (DenseViT + SimpleFeaturePyramid) on a tiny COCO-format set at ``size`` px."""
    C = arch['embed_dims']
    m = cfg.model
    m.backbone.update(arch=arch, img_size=img_size, out_indices=[len_layers(arch) - 1],
                      window_size=4, global_attn_indices=[1, len_layers(arch) - 1],
                      rel_pos_grid=size // 16)
    m.backbone.init_cfg.checkpoint = ckpt
    m.neck.update(in_channels=C, out_channels=width)
    m.rpn_head.update(in_channels=width, feat_channels=width)
    m.roi_head.bbox_roi_extractor.out_channels = width
    m.roi_head.mask_roi_extractor.out_channels = width
    m.roi_head.bbox_head.update(in_channels=width, conv_out_channels=width, fc_out_channels=64,
                                num_classes=len(classes))
    m.roi_head.mask_head.update(in_channels=width, conv_out_channels=width,
                                num_classes=len(classes))
    m.train_cfg.rcnn.sampler.num = 64
    m.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    m.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    m.test_cfg.rcnn.score_thr = 0.0  # a barely trained detector must still return boxes
    for loader, split in ((cfg.train_dataloader, 'train'), (cfg.val_dataloader, 'val')):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        ds = loader.dataset
        ds.update(data_root=data_root, ann_file=f'annotations/instances_{split}.json',
                  data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=tuple(classes)))
        for t in ds.pipeline:
            for key in ('scale', 'crop_size', 'size'):
                if tuple(t.get(key, ())) == (1024, 1024):
                    t[key] = (size, size)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = f'{data_root}/annotations/instances_val.json'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    _shorten_schedule(cfg, iters, by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    return prepare_for_runner(cfg, work_dir)


def tiny_upernet(cfg: Config, ckpt: str, data_root: str, arch: dict, img_size: int,
                 work_dir: str, crop: int = 64, iters: int = 2,
                 classes: Sequence[str] = ADE_CLASSES) -> Config:
    """UperNet (DenseViT + Feature2Pyramid) on a tiny ADE20K-format set, slide test."""
    C = arch['embed_dims']
    depth = len_layers(arch)
    m = cfg.model
    m.backbone.update(arch=arch, img_size=img_size,
                      out_indices=[max(depth // 4 - 1, 0), depth // 2 - 1, depth * 3 // 4 - 1,
                                   depth - 1])
    m.backbone.init_cfg.checkpoint = ckpt
    m.data_preprocessor.size = (crop, crop)
    m.neck.embed_dim = C
    m.decode_head.update(in_channels=[C] * 4, channels=32, num_classes=len(classes))
    m.auxiliary_head.update(in_channels=C, channels=16, num_classes=len(classes))
    stride = crop * 341 // 512
    m.test_cfg.update(crop_size=(crop, crop), stride=(stride, stride))  # 341 / 512 of the crop
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        loader.dataset.metainfo = dict(
            classes=tuple(classes), palette=[list(ADE_COLOURS[k + 1]) for k in range(len(classes))])
        for t in loader.dataset.pipeline:
            if t.type in ('RandomResize', 'Resize'):
                t.scale = (crop * 4, crop * 3 // 2)
            if t.type == 'RandomCrop':
                t.crop_size = (crop, crop)
    cfg.val_dataloader.batch_size = 1
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    _shorten_schedule(cfg, iters, by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    return prepare_for_runner(cfg, work_dir)


def len_layers(arch: dict) -> int:
    return int(arch['num_layers'])


def _shorten_schedule(cfg: Config, length: int, by_epoch: bool) -> None:
    """Scale the warmup + decay schedulers counted in epochs (or iterations) to ``length``."""
    scheds = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [
        cfg.param_scheduler]
    scheds = [s for s in scheds if s.get('by_epoch', True) == by_epoch]
    total = max([s.get('end', 0) for s in scheds] + [1])
    for s in scheds:
        for key in ('begin', 'end', 'T_max'):
            if isinstance(s.get(key), int):
                s[key] = max(int(s[key] * length / total), 0 if key == 'begin' else 1)
        if s.type == 'LinearLR':  # a warmup must last >= 2 steps, or it stops at start_factor
            s.end = min(max(s.end, s.get('begin', 0) + max(2, length // 10)), length)
        if s.get('begin', 0) >= s.get('end', length):
            s.begin = s.end - 1
        if 'milestones' in s:
            s.milestones = [max(int(v * length / total), 1) for v in s.milestones]
