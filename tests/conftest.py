import os
import os.path as osp
import sys

# One intra-op thread per process: tests run tiny models (overhead-bound), and on a 2-core
# machine several processes (pytest, DDP workers, tools/train.py subprocesses) each spinning 2
# OpenMP threads slow everything down up to 10x. Subprocesses inherit the variable.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
TINY_PCAE = osp.join(ROOT, 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py')

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory) -> str:
    """A small dataset in the real ImageNet folder/ann-file layout."""
    from pcae_mm.datasets.tiny_imagenet import make_tiny_imagenet
    root = str(tmp_path_factory.mktemp('tiny_imagenet'))
    return make_tiny_imagenet(root, num_classes=4, train_per_class=4, val_per_class=2, size=96)


def tiny_vit(**kwargs) -> dict:
    """A 4-block 64-wide ViT on 96 px images (36 patches) for fast CPU tests."""
    cfg = dict(type='MIMViT',
               arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
               img_size=96, patch_size=16, mask_ratio=0.75)
    cfg.update(kwargs)
    return cfg
