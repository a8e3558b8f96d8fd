"""Write an ImageNet-layout folder of generated JPEGs, fast, for the GPU check's real Runner runs.

``python tools/device/make_jpegs.py ROOT --num 4000 --size 256 --classes 10 --workers 16``
writes ``ROOT/train/n0000000k/img_XXXXX.JPEG`` and ``ROOT/meta/train.txt`` (what
``ImageNetLayout`` / mmpretrain's ``ImageNet`` read). Needs numpy and Pillow only (both on the
bare GPU machine). The images are smooth colour fields with stripes, blobs and grain, quality
90: they decode about as fast as photographs of the same size (a JPEG's decoding time follows
its size and its entropy, and pure noise would be far slower, flat colour far faster).
Deterministic for a seed; an existing complete folder is reused.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image


def make_image(index: int, size: int, seed: int) -> np.ndarray:
    """One size x size x 3 uint8 image (deterministic for ``index`` and ``seed``)."""
    rng = np.random.default_rng([seed, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 3), np.float32)
    for c in range(3):  # a smooth gradient per channel
        a, b, d = rng.uniform(-1, 1, 3)
        img[..., c] = 128 + 60 * (a * xx + b * yy) + d * 30
    angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 12)  # stripes
    img += 40 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))[..., None]
    for _ in range(4):  # soft blobs of colour
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        blob = np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-90, 90, 3)
    img += rng.normal(0, 6, img.shape)  # grain
    return np.clip(img, 0, 255).astype(np.uint8)


def _write(job) -> str:
    root, index, label, size, seed = job
    name = f'n{label:08d}/img_{index:05d}.JPEG'
    path = osp.join(root, 'train', name)
    if not osp.isfile(path):
        Image.fromarray(make_image(index, size, seed)).save(path, quality=90)
    return f'{name} {label}'


def make_jpegs(root: str, num: int = 4000, size: int = 256, classes: int = 10,
               workers: int = 8, seed: int = 0) -> dict:
    """Write the set (or reuse a complete one); returns its spec plus ``seconds``."""
    spec = dict(num=num, size=size, classes=classes, seed=seed)
    stamp = osp.join(root, 'meta', 'spec.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == spec:
                return dict(spec, seconds=0.0, reused=True)
    t0 = time.perf_counter()
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for label in range(classes):
        os.makedirs(osp.join(root, 'train', f'n{label:08d}'), exist_ok=True)
    jobs = [(root, i, i % classes, size, seed) for i in range(num)]
    if workers > 1:
        with Pool(workers) as pool:
            lines = pool.map(_write, jobs, chunksize=max(1, num // (workers * 8)))
    else:
        lines = [_write(j) for j in jobs]
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(stamp, 'w') as f:
        json.dump(spec, f)
    return dict(spec, seconds=round(time.perf_counter() - t0, 2), reused=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root')
    parser.add_argument('--num', type=int, default=4000)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--classes', type=int, default=10)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    info = make_jpegs(args.root, args.num, args.size, args.classes, args.workers, args.seed)
    total = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(osp.join(args.root, 'train'))
                for f in fs)
    info['mbytes'] = round(total / 2**20, 1)
    print(json.dumps(info))
    return 0


if __name__ == '__main__':
    sys.exit(main())
