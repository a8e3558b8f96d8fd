import os.path as osp

import numpy as np
import pytest

import pcae_mm  # noqa: F401
from pcae_mm.datasets.transforms import LoadImageChecked


def test_loads_a_valid_image(tiny_imagenet):
    path = osp.join(tiny_imagenet, 'train', 'n00000000', 'train_0_0000.JPEG')
    out = LoadImageChecked().transform(dict(img_path=path))
    assert out['img'].shape == (96, 96, 3) and out['img'].dtype == np.uint8


def test_corrupt_image_names_the_file(tmp_path):
    bad = tmp_path / 'broken.JPEG'
    bad.write_bytes(b'\xff\xd8\xff\xe0 this is not really a jpeg')
    with pytest.raises(OSError, match='broken.JPEG'):
        LoadImageChecked().transform(dict(img_path=str(bad)))


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(OSError, match='gone.JPEG'):
        LoadImageChecked().transform(dict(img_path=str(tmp_path / 'gone.JPEG')))


def test_tiny_dataset_has_imagenet_layout(tiny_imagenet):
    from mmpretrain.datasets import ImageNet
    ds = ImageNet(data_root=tiny_imagenet, split='train')
    assert len(ds) == 16
    assert {ds.get_data_info(i)['gt_label'] for i in range(len(ds))} == {0, 1, 2, 3}
