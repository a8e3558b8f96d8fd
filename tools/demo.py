"""The main job on a small built-in default: tiny PCAE pre-training end to end.

Builds a small ImageNet-layout dataset from photographs shipped with scikit-image (no network),
pre-trains a tiny PCAE ViT with the real mmengine Runner, saves a checkpoint, re-loads its
backbone into mmpretrain's own VisionTransformer and prints a summary.

    python tools/demo.py [--method pcae] [--work-dir work_dirs/demo] [--epochs 4]
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import pcae_mm  # noqa: E402,F401
from pcae_mm.datasets.tiny_imagenet import make_tiny_imagenet  # noqa: E402
from pcae_mm.utils.runtime import adapt_to_device, set_dataloader_defaults  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = {
    'pcae': 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', choices=sorted(METHODS), default='pcae')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'tiny_imagenet'))
    parser.add_argument('--epochs', type=int, default=4)
    return parser.parse_args(argv)


def pretrain(args: argparse.Namespace) -> dict:
    cfg = Config.fromfile(osp.join(ROOT, METHODS[args.method]))
    cfg.work_dir = osp.join(args.work_dir, f'{args.method}_pretrain')
    cfg.train_dataloader.dataset.data_root = args.data_root
    cfg.train_cfg.max_epochs = args.epochs
    cfg.default_hooks.logger.interval = 2
    cfg.launcher = 'none'
    set_dataloader_defaults(cfg)
    adapt_to_device(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(cfg.work_dir, f'epoch_{args.epochs}.pth')
    scalars = runner.message_hub.log_scalars['train/loss'].data[0]
    return dict(config=METHODS[args.method], checkpoint=ckpt, iters=runner.iter,
                loss_first=float(scalars[0]), loss_last=float(scalars[-1]), cfg=cfg)


def reload_backbone(ckpt_path: str, cfg: Config) -> int:
    """Load the checkpoint's backbone into mmpretrain's own VisionTransformer (strict)."""
    from mmpretrain.models import VisionTransformer
    state = torch.load(ckpt_path, map_location='cpu')['state_dict']
    backbone = {k[9:]: v for k, v in state.items() if k.startswith('backbone.')}
    b = cfg.model.backbone
    vit = VisionTransformer(arch=dict(b.arch), img_size=b.img_size, patch_size=b.patch_size)
    vit.load_state_dict(backbone, strict=True)
    return len(backbone)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    print(f'[demo] building the tiny ImageNet-layout dataset under {args.data_root}', flush=True)
    make_tiny_imagenet(args.data_root, num_classes=4, train_per_class=8, val_per_class=2,
                       size=128)
    print(f'[demo] pre-training tiny {args.method.upper()} for {args.epochs} epochs', flush=True)
    result = pretrain(args)
    n = reload_backbone(result['checkpoint'], result.pop('cfg'))
    result.update(backbone_tensors_reloaded=n, seconds=round(time.time() - t0, 1))
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(result, f, indent=2)
    print('\n[demo] summary')
    for key, value in result.items():
        print(f'  {key:28s} {value}')
    return result


if __name__ == '__main__':
    main()
