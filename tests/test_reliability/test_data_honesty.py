"""Truncated images are named (or skipped, counted, when asked); the ImageNet layout works
for any number of classes without meta/train.txt (issue 15)."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import pcae_mm  # noqa: F401
from pcae_mm.datasets import ImageNetLayout
from pcae_mm.datasets.transforms import LoadImageChecked

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def image(path, fmt='JPEG', size=64):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path, fmt)
    return path


def truncate(path, keep=0.6):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])
    return path


@pytest.mark.parametrize('fmt,ext', [('JPEG', 'JPEG'), ('PNG', 'png')])
def test_truncated_image_is_an_error_naming_the_file(tmp_path, fmt, ext):
    path = truncate(image(str(tmp_path / f'cut.{ext}'), fmt))
    with pytest.raises(OSError, match=rf'cut\.{ext}.*truncated.*on_corrupt'):
        LoadImageChecked().transform(dict(img_path=path))


def test_complete_images_still_load(tmp_path):
    for fmt, ext in (('JPEG', 'JPEG'), ('PNG', 'png')):
        out = LoadImageChecked().transform(dict(img_path=image(str(tmp_path / f'ok.{ext}'), fmt)))
        assert out['img'].shape == (64, 64, 3)


def test_skip_policy_counts_and_logs(tmp_path, caplog):
    loader = LoadImageChecked(on_corrupt='skip')
    cut = truncate(image(str(tmp_path / 'a.JPEG')))
    junk = tmp_path / 'b.JPEG'
    junk.write_bytes(b'not an image at all')
    assert loader.transform(dict(img_path=cut)) is None
    assert loader.transform(dict(img_path=str(junk))) is None
    assert loader.skipped == 2
    with pytest.raises(OSError, match='gone.JPEG'):  # a missing file is never skipped
        loader.transform(dict(img_path=str(tmp_path / 'gone.JPEG')))
    with pytest.raises(ValueError, match='on_corrupt'):
        LoadImageChecked(on_corrupt='ignore')


def test_skip_policy_in_a_dataset_draws_another_sample(tmp_path, caplog):
    root = tmp_path / 'data'
    for c in ('a', 'b'):
        os.makedirs(root / 'train' / c)
        for i in range(3):
            image(str(root / 'train' / c / f'{i}.JPEG'))
    truncate(str(root / 'train' / 'a' / '0.JPEG'))
    ds = ImageNetLayout(data_root=str(root), split='train',
                        pipeline=[dict(type='LoadImageChecked', on_corrupt='skip'),
                                  dict(type='PackInputs')])
    out = [ds[i] for i in range(len(ds))]
    assert all(o is not None for o in out)
    loader = ds.pipeline.transforms[0]
    assert loader.skipped >= 1


@pytest.mark.parametrize('num_classes', [1, 4, 7])
def test_folder_only_layout_works_for_any_number_of_classes(tmp_path, num_classes):
    for c in range(num_classes):
        os.makedirs(tmp_path / 'train' / f'class{c}')
        image(str(tmp_path / 'train' / f'class{c}' / 'x.JPEG'), size=16)
    ds = ImageNetLayout(data_root=str(tmp_path), split='train')
    assert len(ds) == num_classes
    assert ds.metainfo['classes'] == tuple(f'class{c}' for c in range(num_classes))


def test_meta_file_layout_still_works(tiny_imagenet):
    ds = ImageNetLayout(data_root=tiny_imagenet, split='train')
    assert len(ds) == 16
    assert {ds.get_data_info(i)['gt_label'] for i in range(len(ds))} == {0, 1, 2, 3}


def test_pretraining_configs_read_the_any_class_layout():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'))
    assert cfg.train_dataloader.dataset.type == 'ImageNetLayout'


def test_tiny_dataset_without_meta_file_builds(tiny_imagenet, tmp_path):
    copy = tmp_path / 'no_meta'
    shutil.copytree(osp.join(tiny_imagenet, 'train'), copy / 'train')
    ds = ImageNetLayout(data_root=str(copy), split='train')
    assert len(ds) == 16 and len(ds.metainfo['classes']) == 4
