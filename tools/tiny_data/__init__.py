"""Tiny data and CPU-sized configs for the demo (tools/demo.py) and the tests; not part of the
installed pcae_mm package.

* :mod:`.imagenet`: a small ImageNet-layout set (``make_tiny_imagenet``);
* :mod:`.downstream`: small COCO-instances and ADE20K sets in their real formats;
* :mod:`.configs`: the shipped benchmark configs shrunk to CPU size (same code paths), and
  ``TINY_PRETRAIN``, each method's tiny pre-training config;
* :mod:`.digits_knn`: the learning check (pre-train on scikit-learn's digits, score kNN).

The demo, run as a script, imports it as ``tiny_data`` (Python puts tools/ on ``sys.path``);
the tests as ``tools.tiny_data`` (pytest.ini puts the repository root there).
"""
from .configs import (TINY_PRETRAIN, prepare_for_runner, tiny_classification, tiny_mask_rcnn,
                      tiny_upernet)
from .downstream import ADE_CLASSES, COCO_CLASSES, make_tiny_ade, make_tiny_coco
from .imagenet import make_tiny_imagenet

__all__ = [
    'make_tiny_imagenet', 'make_tiny_coco', 'make_tiny_ade', 'COCO_CLASSES', 'ADE_CLASSES',
    'TINY_PRETRAIN', 'prepare_for_runner', 'tiny_classification', 'tiny_mask_rcnn',
    'tiny_upernet'
]
