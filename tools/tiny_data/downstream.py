"""Small COCO (instances, polygon masks) and ADE20K (image / label PNG) sets in the REAL formats.

For the demo and the tests: backgrounds are crops of the photographs scikit-image ships (plain
colours without it), objects are filled rectangles ("box") and octagons ("disc") whose polygons
are the annotations. Deterministic for a seed; a complete existing set is re-used.

COCO layout::

    root/annotations/instances_{train,val}.json   root/{train,val}/*.jpg

ADE20K layout (label 0 = "other", ignored through ``reduce_zero_label``; 1..3 = classes)::

    root/images/{training,validation}/*.jpg   root/annotations/{training,validation}/*.png
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .imagenet import _photographs

COCO_CLASSES = ('box', 'disc')
COCO_COLOURS = {1: (230, 60, 60), 2: (60, 200, 90)}
ADE_COLOURS = {1: (70, 195, 30), 2: (140, 135, 60), 3: (210, 75, 90)}
# Label 0 ('other') is dropped by reduce_zero_label, so PNG label k + 1 is class k: the blocks
# carry ADE20K's first three class names (mmseg only accepts a subset of its classes).
ADE_CLASSES = ('wall', 'building', 'sky')


def _background(rng: np.random.Generator, photos: List[np.ndarray], size: int) -> Image.Image:
    if not photos:
        return Image.new('RGB', (size, size), tuple(int(c) for c in rng.integers(0, 80, 3)))
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    s = int(min(h, w) * rng.uniform(0.4, 1.0))
    y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
    img = Image.fromarray(photo[y:y + s, x:x + s]).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def _shapes(rng: np.random.Generator, size: int) -> List[Tuple[int, List[float]]]:
    """1-3 objects: (category id, flat polygon) of rectangles (1) and octagons (2)."""
    objs = []
    for _ in range(int(rng.integers(1, 4))):
        w, h = rng.integers(size // 5, size // 2, size=2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        if rng.random() < 0.5:
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            objs.append((1, [float(v) for v in poly]))
        else:
            cx, cy, r = x + w / 2, y + h / 2, min(w, h) / 2
            ang = np.linspace(0, 2 * np.pi, 9)[:-1]
            poly = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1).reshape(-1)
            objs.append((2, [float(v) for v in poly]))
    return objs


def _complete(stamp: str, spec: dict) -> bool:
    if not osp.isfile(stamp):
        return False
    with open(stamp) as f:
        return json.load(f) == spec


def make_tiny_coco(root: str, num_train: int = 4, num_val: int = 2, size: int = 128,
                   seed: int = 0) -> str:
    """Write a COCO instance-segmentation set with polygon masks; returns ``root``."""
    spec = dict(kind='coco', train=num_train, val=num_val, size=size, seed=seed)
    stamp = osp.join(root, 'annotations', 'spec.json')
    if _complete(stamp, spec):
        return root
    rng = np.random.default_rng(seed)
    photos = _photographs(4)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, n in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img = _background(rng, photos, size)
            draw = ImageDraw.Draw(img)
            for cat, poly in _shapes(rng, size):
                draw.polygon(list(zip(poly[::2], poly[1::2])), fill=COCO_COLOURS[cat])
                xs, ys = poly[::2], poly[1::2]
                x0, y0 = min(xs), min(ys)
                w, h = max(xs) - x0, max(ys) - y0
                anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=cat,
                                 segmentation=[poly], bbox=[x0, y0, w, h], area=w * h * 0.9,
                                 iscrowd=0))
            name = f'{split}_{i:03d}.jpg'
            img.save(osp.join(root, split, name), quality=95)
            images.append(dict(id=i + 1, file_name=name, width=size, height=size))
        categories = [dict(id=k + 1, name=c) for k, c in enumerate(COCO_CLASSES)]
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns, categories=categories), f)
    with open(stamp, 'w') as f:
        json.dump(spec, f)
    return root


def make_tiny_ade(root: str, num_train: int = 4, num_val: int = 2, size: int = 96,
                  seed: int = 1) -> str:
    """Write an ADE20K-layout semantic-segmentation set (3 classes + 'other'); returns ``root``."""
    spec = dict(kind='ade', train=num_train, val=num_val, size=size, seed=seed)
    stamp = osp.join(root, 'spec.json')
    if _complete(stamp, spec):
        return root
    rng = np.random.default_rng(seed)
    photos = _photographs(4)
    block = size // 3
    for split, n in (('training', num_train), ('validation', num_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            img = np.asarray(_background(rng, photos, size)).copy()
            for cls in (1, 2, 3):
                y, x = rng.integers(0, size - block, size=2)
                label[y:y + block, x:x + block] = cls
                img[y:y + block, x:x + block] = ADE_COLOURS[cls]
            img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(osp.join(root, 'images', split, f'ADE_{i:03d}.jpg'))
            Image.fromarray(label).save(osp.join(root, 'annotations', split, f'ADE_{i:03d}.png'))
    with open(stamp, 'w') as f:
        json.dump(spec, f)
    return root
