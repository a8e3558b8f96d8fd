"""Build a small dataset in the real ImageNet layout, for the demo and the tests.

Layout (what mmpretrain's ``ImageNet`` dataset reads)::

    root/train/<class>/<name>.JPEG     root/meta/train.txt  ("<class>/<name>.JPEG <label>")
    root/val/<class>/<name>.JPEG       root/meta/val.txt

Images are crops of real photographs shipped with scikit-image (no network) when it is
installed, one class per photograph, with random crops, flips and colour jitter; otherwise
procedural textures. The build is deterministic for a seed and skipped when already complete.
"""
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from PIL import Image

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'horse', 'brick', 'grass')


def _photographs(num: int) -> List[np.ndarray]:
    try:
        from skimage import data as skdata
    except ImportError:
        return []
    photos = []
    for name in PHOTOS:
        try:
            img = np.asarray(getattr(skdata, name)())
        except Exception:  # noqa: BLE001 - a sample needing a download is skipped
            continue
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append(img[..., :3].astype(np.uint8))
        if len(photos) == num:
            break
    return photos if len(photos) == num else []


def _texture(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    freq = 2 + 3 * label
    angle = rng.uniform(0, np.pi)
    wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    base = rng.uniform(0, 255, size=3)
    img = base[None, None] + 80 * wave[..., None] * rng.uniform(0.5, 1, size=3)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _variant(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    h, w = photo.shape[:2]
    s = int(min(h, w) * rng.uniform(0.5, 1.0))
    y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
    img = Image.fromarray(photo[y:y + s, x:x + s]).resize((size, size), Image.BICUBIC)
    arr = np.asarray(img).astype(np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    arr = arr * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20)
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_tiny_imagenet(root: str,
                       num_classes: int = 4,
                       train_per_class: int = 8,
                       val_per_class: int = 2,
                       size: int = 128,
                       seed: int = 0,
                       photos: Optional[bool] = None) -> str:
    """Write (or re-use) a tiny ImageNet-layout dataset under ``root``.

    Args:
        root (str): Output folder.
        num_classes (int): Classes (one photograph each when photographs are used).
        train_per_class (int): Training images per class.
        val_per_class (int): Validation images per class.
        size (int): Image side in pixels.
        seed (int): Random seed.
        photos (bool, optional): Force (True) or forbid (False) photographs; None = use them
            when scikit-image is installed.

    Returns:
        str: ``root``.
    """
    spec = dict(num_classes=num_classes, train=train_per_class, val=val_per_class, size=size,
                seed=seed, photos=photos)
    stamp = osp.join(root, 'meta', 'spec.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == spec:
                return root
    rng = np.random.default_rng(seed)
    sources = _photographs(num_classes) if photos is not False else []
    if photos and not sources:
        raise RuntimeError('photographs requested but scikit-image sample images are missing')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        lines = []
        for label in range(num_classes):
            cls = f'n{label:08d}'
            os.makedirs(osp.join(root, split, cls), exist_ok=True)
            for i in range(per_class):
                img = (_variant(rng, sources[label], size) if sources else
                       _texture(rng, label, size))
                name = f'{cls}/{split}_{label}_{i:04d}.JPEG'
                Image.fromarray(img).save(osp.join(root, split, name), quality=92)
                lines.append(f'{name} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    with open(stamp, 'w') as f:
        json.dump(spec, f)
    return root
