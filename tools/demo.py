"""The main job on a small built-in default: pre-train -> fine-tune -> Mask R-CNN -> UperNet.

Everything runs on the CPU in minutes, with the real code paths of the full recipes:

1. builds small datasets in the real formats from the photographs scikit-image ships (no
   network): ImageNet layout (4 classes), COCO instances with polygon masks, ADE20K pairs;
2. pre-trains a tiny ViT with the chosen method (tools/train.py's Runner), saving checkpoints
   and a mask / kept-tokens / prediction picture (MIMVisualizationHook);
3. fine-tunes an ImageNet classifier from that checkpoint (configs/benchmarks/classification);
4. trains and evaluates Mask R-CNN (mmdet) and UperNet (mmseg) from the same checkpoint
   (configs/benchmarks/mask_rcnn, configs/benchmarks/upernet), shrunk only in size;
5. prints a summary table (also written to WORK_DIR/summary.json and summary.md).

    python tools/demo.py [--method pcae|sdae|pr_mim|mae|mr_mae] [--work-dir work_dirs/demo]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import pcae_mm  # noqa: E402,F401
from pcae_mm.datasets.tiny_downstream import (COCO_CLASSES, make_tiny_ade,  # noqa: E402
                                              make_tiny_coco)
from pcae_mm.datasets.tiny_imagenet import make_tiny_imagenet  # noqa: E402
from pcae_mm.downstream.tiny import (prepare_for_runner, tiny_classification,  # noqa: E402
                                     tiny_mask_rcnn, tiny_upernet)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = {
    'pcae': 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'sdae': 'configs/sdae/sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'pr_mim': 'configs/pr_mim/pr-mim_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'mae': 'configs/pr_mim/mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
    'mr_mae': 'configs/mr_mae/mr-mae_vit-tiny-p16_1xb8-coslr-2e_tiny-in1k.py',
}
BENCH = {
    'classification': 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py',
    'mask_rcnn':
    'configs/benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py',
    'upernet':
    'configs/benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', choices=sorted(METHODS), default='pcae')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'demo'))
    parser.add_argument('--epochs', type=int, default=6, help='pre-training epochs')
    parser.add_argument('--finetune-epochs', type=int, default=6)
    parser.add_argument('--det-iters', type=int, default=40, help='Mask R-CNN iterations')
    parser.add_argument('--seg-iters', type=int, default=40, help='UperNet iterations')
    parser.add_argument('--images-per-class', type=int, default=12,
                        help='training images per ImageNet class (4 classes)')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['classification', 'mask_rcnn', 'upernet'],
                        help='downstream stages to skip')
    return parser.parse_args(argv)


def stage(i: int, n: int, text: str) -> None:
    print(f'\n[demo {i}/{n}] {text}', flush=True)


def run(cfg: Config) -> Dict[str, float]:
    """Train (the configs validate at the end) and return the last validation metrics."""
    before = set(DefaultScope._instance_dict)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        scalars = runner.message_hub.log_scalars
        metrics = {k[len('val/'):]: float(v.current()) for k, v in scalars.items()
                   if k.startswith('val/')}
        loss = scalars.get('train/loss')
        first_last = (float(loss.data[0][0]), float(loss.data[0][-1])) if loss else (None, None)
        return dict(metrics, loss_first=first_last[0], loss_last=first_last[1])
    finally:  # a Runner leaves its toolbox scope as the default: restore mmpretrain's
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)


def make_tiny_teachers(cfg: Config, work_dir: str) -> None:
    """MR-MAE needs frozen teacher checkpoints; the demo uses random tiny ones (stated)."""
    from mmpretrain.registry import MODELS
    for name, teacher in cfg.model.teachers.items():
        path = osp.join(work_dir, 'tiny_teachers', f'{name}.pth')
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not osp.isfile(path):
            torch.manual_seed(0)
            state = MODELS.build(teacher.backbone).state_dict()
            torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, path)
        teacher.checkpoint = path
        print(f'  teacher {name}: RANDOM tiny weights at {path} (demo only: real runs load '
              'CLIP / DINO checkpoints)')


def pretrain(args, data: str) -> dict:
    cfg = Config.fromfile(osp.join(ROOT, METHODS[args.method]))
    cfg.train_dataloader.dataset.data_root = data
    cfg.train_cfg.max_epochs = args.epochs
    cfg.default_hooks.logger.interval = 4
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='MIMVisualizationHook', interval=args.epochs, num_images=4)]
    if 'teachers' in cfg.model:
        make_tiny_teachers(cfg, args.work_dir)
    work = osp.join(args.work_dir, f'{args.method}_pretrain')
    cfg = prepare_for_runner(cfg, work)
    result = run(cfg)
    pictures = sorted(
        osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
        if f.startswith('mim_') and f.endswith('.png'))
    b = cfg.model.backbone
    return dict(checkpoint=osp.join(work, f'epoch_{args.epochs}.pth'), arch=dict(b.arch),
                img_size=b.img_size, picture=pictures[-1] if pictures else None,
                loss_first=result['loss_first'], loss_last=result['loss_last'])


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    stages: List[str] = [s for s in BENCH if s not in args.skip]
    n = 2 + len(stages)
    stage(1, n, f'building tiny datasets under {args.data_root}')
    imagenet = make_tiny_imagenet(osp.join(args.data_root, 'imagenet'), num_classes=4,
                                  train_per_class=args.images_per_class, val_per_class=4,
                                  size=128)
    stage(2, n, f'pre-training tiny {args.method} for {args.epochs} epochs '
          f'({METHODS[args.method]})')
    pre = pretrain(args, imagenet)
    summary = dict(method=args.method, pretrain=pre, stages={})

    arch, img = pre['arch'], pre['img_size']
    ckpt = pre['checkpoint']
    builders: Dict[str, Callable[[], Config]] = {
        'classification': lambda: tiny_classification(
            Config.fromfile(osp.join(ROOT, BENCH['classification'])), ckpt, imagenet, arch, img,
            num_classes=4, work_dir=osp.join(args.work_dir, 'finetune'),
            epochs=args.finetune_epochs),
        'mask_rcnn': lambda: tiny_mask_rcnn(
            Config.fromfile(osp.join(ROOT, BENCH['mask_rcnn'])), ckpt,
            make_tiny_coco(osp.join(args.data_root, 'coco'), num_train=16, num_val=4), arch,
            img, COCO_CLASSES, osp.join(args.work_dir, 'mask_rcnn'), iters=args.det_iters),
        'upernet': lambda: tiny_upernet(
            Config.fromfile(osp.join(ROOT, BENCH['upernet'])), ckpt,
            make_tiny_ade(osp.join(args.data_root, 'ade20k'), num_train=16, num_val=4), arch,
            img, osp.join(args.work_dir, 'upernet'), iters=args.seg_iters),
    }
    titles = dict(classification='ImageNet-layout fine-tuning (layer decay, mixup/cutmix)',
                  mask_rcnn='COCO-format Mask R-CNN (mmdet)',
                  upernet='ADE20K-format UperNet (mmseg)')
    for i, name in enumerate(stages):
        stage(3 + i, n, f'{titles[name]} from {osp.relpath(ckpt, ROOT)}')
        summary['stages'][name] = run(builders[name]())
    summary['seconds'] = round(time.time() - t0, 1)
    write_summary(summary, args.work_dir)
    return summary


METRICS = {
    'classification': ['accuracy/top1'],
    'mask_rcnn': ['coco/bbox_mAP', 'coco/segm_mAP'],
    'upernet': ['mIoU', 'aAcc'],
}


def write_summary(summary: dict, work_dir: str) -> None:
    pre = summary['pretrain']
    rows = [('pre-train', f"loss {pre['loss_first']:.4f} -> {pre['loss_last']:.4f}",
             osp.relpath(pre['checkpoint'], ROOT))]
    for name, res in summary['stages'].items():
        metrics = ', '.join(f'{k} {res[k]:.4g}' for k in METRICS[name] if k in res)
        loss = (f"loss {res['loss_first']:.3f} -> {res['loss_last']:.3f}; "
                if res.get('loss_first') is not None else '')
        rows.append((name, loss + metrics, osp.relpath(osp.join(work_dir, {
            'classification': 'finetune'}.get(name, name)), ROOT)))
    if pre.get('picture'):
        rows.append(('picture', 'mask | kept tokens | prediction', osp.relpath(pre['picture'],
                                                                            ROOT)))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"| {'stage'.ljust(width[0])} | {'result'.ljust(width[1])} | "
             f"{'where'.ljust(width[2])} |",
             '|' + '|'.join('-' * (w + 2) for w in width) + '|']
    lines += [f'| {a.ljust(width[0])} | {b.ljust(width[1])} | {c.ljust(width[2])} |'
              for a, b, c in rows]
    table = '\n'.join(lines)
    print(f"\n[demo] {summary['method']} done in {summary['seconds']} s "
          '(tiny models on tiny data: the numbers show the pipeline works, not accuracy)\n')
    print(table)
    with open(osp.join(work_dir, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2, default=str)


if __name__ == '__main__':
    main()
