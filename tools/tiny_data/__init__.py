"""Tiny data and CPU-sized configs for the demo (tools/demo.py) and the tests; not part of the
installed pcae_mm package.

* :mod:`.imagenet`: a small ImageNet-layout set (``make_tiny_imagenet``);
* :mod:`.downstream`: small COCO-instances and ADE20K sets in their real formats;
* :mod:`.configs`: ``TINY_CONFIGS``, the one list of tiny pre-training configs
  (``tiny_config(method)``: its path; ``DEMO_METHODS``: those the demo runs), and the shipped
  benchmark configs shrunk to CPU size (same code paths);
* :mod:`.digits_knn`: the learning check (pre-train on scikit-learn's digits, score kNN).

Imported as ``tools.tiny_data`` (the demo runs as ``python -m tools.demo`` from the repository
root; pytest.ini puts the repository root on ``sys.path`` for the tests).
"""
from .configs import (DEMO_METHODS, TINY_CONFIGS, prepare_for_runner, tiny_classification,
                      tiny_config, tiny_mask_rcnn, tiny_upernet)
from .downstream import ADE_CLASSES, COCO_CLASSES, make_tiny_ade, make_tiny_coco
from .imagenet import make_tiny_imagenet

__all__ = [
    'make_tiny_imagenet', 'make_tiny_coco', 'make_tiny_ade', 'COCO_CLASSES', 'ADE_CLASSES',
    'TINY_CONFIGS', 'DEMO_METHODS', 'tiny_config', 'prepare_for_runner', 'tiny_classification',
    'tiny_mask_rcnn', 'tiny_upernet'
]
