"""GPUDecodeDataPreprocessor, run on the CPU (same code path as CUDA, decode_jpeg(device='cpu')):
the same crops, flips and normalised batch as the fast CPU pipeline + SelfSupDataPreprocessor
under one seed; mixed batches; bad files named (issue 24)."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, default_collate, pseudo_collate
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS, TRANSFORMS

import pcae_mm  # noqa: F401
from pcae_mm.datasets import GPUDecodeDataPreprocessor

NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
CROP = dict(scale=224, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
AUGMENTS = [dict(type='RandomResizedCropTensor', **CROP), dict(type='RandomFlipTensor', prob=0.5)]
FAST = [dict(type='LoadImageFast'), *AUGMENTS, dict(type='PackInputs')]
WORKER = [dict(type='LoadImageBytes'), dict(type='PackInputs')]


def compose(cfgs):
    return Compose([TRANSFORMS.build(c) for c in cfgs])


def gpu_preprocessor(to_rgb=True, augments=AUGMENTS):
    return MODELS.build(dict(type='GPUDecodeDataPreprocessor', to_rgb=to_rgb,
                             augments=augments, **NORM))


def reference(paths, seed, to_rgb=True):
    """Fast CPU pipeline per sample (np.random drawn in sample order) + the stock
    preprocessor."""
    fast = compose(FAST)
    np.random.seed(seed)
    samples = [fast(dict(img_path=p, sample_idx=i)) for i, p in enumerate(paths)]
    return SelfSupDataPreprocessor(to_rgb=to_rgb, **NORM)(default_collate(samples)), samples


def gpu_path(paths, seed, pre):
    worker = compose(WORKER)
    batch = pseudo_collate([worker(dict(img_path=p, sample_idx=i))
                            for i, p in enumerate(paths)])
    np.random.seed(seed)
    return pre(batch, True), batch


@pytest.mark.parametrize('to_rgb', [True, False])
def test_same_batch_as_the_fast_cpu_pipeline(photos, odd_images, to_rgb):
    # photographs (bytes, decoded in the preprocessor) mixed with files the worker decodes
    paths = photos[:6] + [odd_images[k] for k in ('grey', 'cmyk', 'rotated', 'rgb')]
    ref, ref_samples = reference(paths, seed=5, to_rgb=to_rgb)
    out, batch = gpu_path(paths, seed=5, pre=gpu_preprocessor(to_rgb))
    kinds = [x.ndim for x in batch['inputs']]
    assert kinds == [1] * 6 + [3] * 4  # encoded and decoded items in one batch
    assert out['inputs'].shape == (len(paths), 3, 224, 224)
    assert out['inputs'].dtype == torch.float32
    # libjpeg-turbo decodes identically through OpenCV and torchvision: equal to float rounding
    torch.testing.assert_close(out['inputs'], ref['inputs'], atol=1e-5, rtol=0)
    for got, want in zip(out['data_samples'], ref_samples):
        assert got.flip == want['data_samples'].flip
        assert got.img_shape == (224, 224)
        assert got.img_path == want['data_samples'].img_path


def test_rgb_for_the_model(red_jpeg):
    out, _ = gpu_path([red_jpeg], seed=0, pre=gpu_preprocessor())
    red = out['inputs'][0]
    assert red[0].mean() > 2 and red[1].mean() < -1.5 and red[2].mean() < -1.5


def test_crop_logic_matches_the_cpu_transforms(photos):
    """The boxes and flips the preprocessor applies are those the CPU transforms draw."""
    pre = gpu_preprocessor()
    out, _ = gpu_path(photos, seed=11, pre=pre)
    np.random.seed(11)
    crop = TRANSFORMS.build(AUGMENTS[0])
    flip = TRANSFORMS.build(AUGMENTS[1])
    for sample in out['data_samples']:
        h, w = sample.ori_shape
        top, left, ch, cw = crop.crop_box(h, w)
        assert sample.crop_bbox == (left, top, left + cw - 1, top + ch - 1)
        assert sample.flip == (flip._choose_direction() is not None)


def test_stacked_batches_are_processed_as_selfsup(photos):
    """A CPU pipeline's stacked batch (e.g. the kNN hook's val loader) is left to the parent."""
    _, samples = reference(photos[:3], seed=0)
    data = default_collate(samples)
    got = gpu_preprocessor()(data)['inputs']
    want = SelfSupDataPreprocessor(to_rgb=True, **NORM)(default_collate(samples))['inputs']
    assert torch.equal(got, want)


def test_undecodable_bytes_name_the_file(photos, odd_images):
    paths = [photos[0], odd_images['corrupt']]
    with pytest.raises(OSError, match=r"corrupt\.jpg.*Remove or replace it"):
        gpu_path(paths, seed=0, pre=gpu_preprocessor())


def test_bad_configurations():
    with pytest.raises(ValueError, match='RandomResizedCropTensor'):
        gpu_preprocessor(augments=[dict(type='RandomFlipTensor', prob=0.5)])
    with pytest.raises(ValueError, match='must be among'):
        gpu_preprocessor(augments=[dict(type='RandomResizedCrop', scale=224)])
    assert isinstance(gpu_preprocessor(), GPUDecodeDataPreprocessor)
