"""Draw mask, PTR-kept tokens and prediction for images, from a config and a checkpoint.

    python tools/visualization/visualize_mim.py CONFIG CHECKPOINT IMG [IMG ...] \
        --out-file mim.png [--seed 0]

A header row names each column: input | masked input (visible patch count) | teacher tokens
kept after each token-reduction stage (PCAE, with the token count) | reconstruction (pixel
targets) or prediction/target cosine similarity (feature targets; colour bar -1 blue .. +1 red,
with the range in the picture); then one row per image. Written as a PNG. During training,
MIMVisualizationHook draws the same picture through the runner's Visualizer (PNG and
TensorBoard backends) and, with ``out_file``, to a fixed path.
"""
import argparse
import os.path as osp

import mmcv
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.engine.hooks.mim_visualization_hook import visualize_batch
from pcae_mm.visualization import save_picture


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--out-file', default='mim_visualization.png')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random mask')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def load_images(paths, size: int) -> torch.Tensor:
    """Read, resize (shorter side) and centre-crop images to size x size, RGB, B x 3 x H x W."""
    imgs = []
    for p in paths:
        img = mmcv.imread(p, channel_order='rgb')
        if img is None:
            raise OSError(f'cannot read image {p!r}')
        img = mmcv.imrescale(img, (size * 8, size), backend='pillow')  # shorter side = size
        h, w = img.shape[:2]
        y, x = (h - size) // 2, (w - size) // 2
        imgs.append(torch.from_numpy(img[y:y + size, x:x + size].copy()).permute(2, 0, 1))
    return torch.stack(imgs).float()


def main(argv=None) -> str:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.to(args.device).eval()
    size = model.backbone.img_size[0]
    raw = load_images(args.images, size).to(args.device)
    pre = model.data_preprocessor
    inputs = (raw - pre.mean) / pre.std
    torch.manual_seed(args.seed)
    grid = visualize_batch(model, inputs)
    out = args.out_file
    save_picture(grid, out)
    print(f'wrote {out} ({grid.shape[1]}x{grid.shape[0]})')
    return out


if __name__ == '__main__':
    main()
