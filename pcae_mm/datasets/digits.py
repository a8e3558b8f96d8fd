"""A small REAL labelled image set that needs no download: scikit-learn's handwritten digits.

``sklearn.datasets.load_digits`` ships inside the scikit-learn wheel: 1797 grey 8x8 images of the
ten digits (UCI optical recognition of handwritten digits, 43 writers), labelled. They are
upsampled to ``size`` px (bicubic) and repeated on three channels, so every method's tiny ViT
(32 px, patch 4 -> 8x8 patches) pre-trains on them, and :class:`~pcae_mm.engine.hooks.KNNEvalHook`
scores the learnt features against the labels (the learning tests and the demo's kNN columns).

The split is fixed: a permutation with seed 0, the last ``num_val`` images are ``val`` (queries),
the rest ``train`` (the kNN bank, and the unlabelled pre-training set).
"""
from typing import List, Optional

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS
from PIL import Image

SPLITS = ('train', 'val', 'all')


def load_digit_images(size: int = 32, split: str = 'all', num_val: int = 497):
    """Digits as uint8 arrays.

    Args:
        size (int): Output side in pixels (the 8x8 originals are upsampled bicubically).
        split (str): ``'train'`` (1300 images by default), ``'val'`` (``num_val``) or ``'all'``.
        num_val (int): Images held out as ``val``. Defaults to 497 (1300 / 497 split).

    Returns:
        tuple: images N x size x size x 3 (uint8, RGB) and labels N (int64).
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is installed by setup_env.sh
        raise ImportError('the digits set comes with scikit-learn: pip install scikit-learn') from e
    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)  # N x 8 x 8
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    if split == 'train':
        order = order[:len(order) - num_val]
    elif split == 'val':
        order = order[len(order) - num_val:]
    out = np.stack([
        np.asarray(Image.fromarray(images[i]).resize((size, size), Image.BICUBIC))
        for i in order
    ])  # N x size x size
    return np.repeat(out[..., None], 3, axis=-1), labels[order]


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """scikit-learn's 1797 labelled 8x8 digits, upsampled, as an mmpretrain dataset.

    The images are held in memory (no files): pipelines start after loading (no
    ``LoadImageFromFile``), e.g. ``[dict(type='PackInputs')]`` for kNN evaluation or
    ``RandomResizedCrop`` + ``PackInputs`` for pre-training.

    Args:
        split (str): ``'train'``, ``'val'`` or ``'all'``. Defaults to ``'train'``.
        size (int): Image side in pixels. Defaults to 32.
        num_val (int): Size of the held-out ``val`` split. Defaults to 497.
        pipeline (list): Transforms.
        **kwargs: Other :class:`mmpretrain.datasets.BaseDataset` arguments.
    """

    METAINFO = dict(classes=tuple(str(i) for i in range(10)))

    def __init__(self,
                 split: str = 'train',
                 size: int = 32,
                 num_val: int = 497,
                 pipeline: Optional[list] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        self.split = split
        self.size = size
        self.num_val = num_val
        super().__init__(ann_file='', pipeline=pipeline or [], **kwargs)

    def load_data_list(self) -> List[dict]:
        images, labels = load_digit_images(self.size, self.split, self.num_val)
        return [dict(img=img, gt_label=int(label), img_shape=img.shape[:2],
                     ori_shape=img.shape[:2]) for img, label in zip(images, labels)]
