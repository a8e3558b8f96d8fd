"""The fast CPU pipeline gives the shipped pipeline's augmentation (issue 24).

* Crop sampling: the same boxes as mmpretrain's RandomResizedCrop under one seed, and its
  statistics (area 0.2-1, aspect 3/4-4/3, the centre-crop fallback) - checked independently of
  the shared code by a two-sample test against the shipped sampler on another seed.
* Output: on the same boxes and flips, the fast pipeline's 3 x 224 x 224 uint8 BGR tensor is the
  shipped one's to within the documented resize tolerance (torch's uint8 antialiased bicubic vs
  Pillow's: same filter, different intermediate rounding), and after the data preprocessor the
  channel order is the same.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, default_collate
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import TRANSFORMS
from scipy import stats

import pcae_mm  # noqa: F401
from pcae_mm.datasets.transforms import RandomFlipTensor, RandomResizedCropTensor

#: Documented in docs/BENCHMARK.md ("Input pipeline"): the fast pipeline vs the shipped one on
#: the same crop boxes. Pixels more than 2 grey levels apart are rare overshoots at sharp edges
#: where the two resamplers round their intermediate (one-direction) result differently.
TOLERANCE = dict(max_abs=16, mean_abs=0.1, frac_over_2=1e-3)
CROP = dict(scale=224, crop_ratio_range=(0.2, 1.0), interpolation='bicubic')
SHIPPED = [dict(type='LoadImageChecked'),
           dict(type='RandomResizedCrop', backend='pillow', **CROP),
           dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
FAST = [dict(type='LoadImageFast'), dict(type='RandomResizedCropTensor', **CROP),
        dict(type='RandomFlipTensor', prob=0.5), dict(type='PackInputs')]
PREPROCESSOR = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def compose(cfgs):
    return Compose([TRANSFORMS.build(c) for c in cfgs])


def shipped_sampler(**kwargs):
    return TRANSFORMS.build(
        dict(type='RandomResizedCrop', backend='pillow', **dict(CROP, **kwargs)))


def test_same_boxes_as_mmpretrain_under_one_seed():
    fast = RandomResizedCropTensor(**CROP)
    ship = shipped_sampler()
    for h, w in ((375, 500), (500, 333), (64, 64), (100, 1000), (1000, 90)):
        for seed in range(200):
            np.random.seed(seed)
            expected = ship.rand_crop_params(np.empty((h, w, 3), np.uint8))
            np.random.seed(seed)
            assert fast.crop_box(h, w) == expected


def _boxes(draw, n, seed):
    np.random.seed(seed)
    return np.array([draw() for _ in range(n)], float)  # top, left, h, w


def spec_sampler(rng, h, w, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), attempts=10):
    """Random-resized-crop sampling written from its definition (Inception / torchvision /
    mmpretrain): area fraction uniform, aspect log-uniform, up to ``attempts`` tries for a box
    that fits, else the centre crop clamped to the aspect range. An independent reference."""
    for _ in range(attempts):
        area = rng.uniform(*scale) * h * w
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1), ch, cw
    cw, ch = (w, int(round(w / ratio[0]))) if w / h < ratio[0] else \
        (int(round(h * ratio[1])), h) if w / h > ratio[1] else (w, h)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def test_crop_statistics_match_the_shipped_sampler():
    h, w, n = 375, 500, 4000
    fast = RandomResizedCropTensor(**CROP)
    ship = shipped_sampler()
    a = _boxes(lambda: fast.crop_box(h, w), n, seed=1)
    b = _boxes(lambda: ship.rand_crop_params(np.empty((h, w, 3))), n, seed=2)
    rng = np.random.default_rng(3)
    ref = np.array([spec_sampler(rng, h, w) for _ in range(n)], float)
    ref_area = ref[:, 2] * ref[:, 3] / (h * w)
    for boxes in (a, b):
        area = boxes[:, 2] * boxes[:, 3] / (h * w)
        aspect = boxes[:, 3] / boxes[:, 2]  # width / height
        # rounding to whole pixels moves the edges by <= 0.5 px
        assert area.min() >= 0.2 * 0.99 and area.max() <= 1.0
        assert aspect.min() >= 0.75 * 0.99 and aspect.max() <= 4 / 3 * 1.01
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= h).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= w).all()
        # large crops of extreme aspect do not fit a 4:3 image and are drawn again: the
        # accepted area fraction averages ~0.49, not 0.6
        assert abs(area.mean() - ref_area.mean()) < 0.02
        assert stats.ks_2samp(area, ref_area).pvalue > 1e-3
        assert stats.ks_2samp(np.log(aspect), np.log(ref[:, 3] / ref[:, 2])).pvalue > 1e-3
    for k, name in enumerate(('top', 'left', 'height', 'width')):
        p = stats.ks_2samp(a[:, k], b[:, k]).pvalue
        assert p > 1e-3, f'crop {name} distribution differs from mmpretrain (KS p={p:.2g})'
    p = stats.ks_2samp(np.log(a[:, 3] / a[:, 2]), np.log(b[:, 3] / b[:, 2])).pvalue
    assert p > 1e-3


def test_fallback_centre_crop_of_an_extreme_image():
    # 10:1 image: no box of aspect 3/4-4/3 and area >= 0.9 fits, every attempt fails
    fast = RandomResizedCropTensor(224, crop_ratio_range=(0.9, 1.0))
    ship = shipped_sampler(crop_ratio_range=(0.9, 1.0))
    for h, w in ((100, 1000), (1000, 100)):
        np.random.seed(0)
        box = fast.crop_box(h, w)
        np.random.seed(0)
        assert box == ship.rand_crop_params(np.empty((h, w, 3)))
        side = round(100 * 4 / 3) if w > h else round(100 / 0.75)
        assert box == ((0, (1000 - side) // 2, 100, side) if w > h else
                       ((1000 - side) // 2, 0, side, 100))


def _compare(photos, seeds):
    ship, fast = compose(SHIPPED), compose(FAST)
    diffs, pairs = [], []
    for seed in seeds:
        for i, path in enumerate(photos):
            np.random.seed(1000 * seed + i)
            a = ship(dict(img_path=path))
            np.random.seed(1000 * seed + i)
            b = fast(dict(img_path=path))
            assert a['inputs'].shape == b['inputs'].shape == (3, 224, 224)
            assert a['inputs'].dtype == b['inputs'].dtype == torch.uint8
            assert b['inputs'].is_contiguous()
            assert a['data_samples'].flip == b['data_samples'].flip
            assert a['data_samples'].flip_direction == b['data_samples'].flip_direction
            diffs.append((a['inputs'].int() - b['inputs'].int()).abs().flatten())
            pairs.append((a, b))
    return torch.cat(diffs).numpy(), pairs


def test_same_output_as_the_shipped_pipeline_within_resize_tolerance(photos):
    diff, pairs = _compare(photos, seeds=range(3))
    assert diff.max() <= TOLERANCE['max_abs'], diff.max()
    assert diff.mean() <= TOLERANCE['mean_abs'], diff.mean()
    assert (diff > 2).mean() <= TOLERANCE['frac_over_2'], (diff > 2).mean()
    assert (diff == 0).mean() > 0.9  # mostly identical pixels
    flips = [a['data_samples'].flip for a, _ in pairs]
    assert 0 < sum(flips) < len(flips)  # both flipped and unflipped crops compared


def test_same_channel_order_after_the_data_preprocessor(photos, red_jpeg):
    _, pairs = _compare(photos[:4], seeds=[0])
    pre = SelfSupDataPreprocessor(**PREPROCESSOR)
    ship = pre(default_collate([a for a, _ in pairs]))['inputs']
    fast = pre(default_collate([b for _, b in pairs]))['inputs']
    assert ship.shape == fast.shape == (4, 3, 224, 224) and fast.dtype == torch.float32
    assert (ship - fast).abs().max() * 57.12 <= TOLERANCE['max_abs'] + 0.01
    red = pre(default_collate([compose(FAST)(dict(img_path=red_jpeg))]))['inputs'][0]
    assert red[0].mean() > 2 and red[1].mean() < -1.5 and red[2].mean() < -1.5  # R, G, B


def test_tensor_transforms_refuse_numpy_and_unsupported_settings():
    with pytest.raises(TypeError, match='LoadImageFast.*RandomResizedCrop'):
        RandomResizedCropTensor(224).transform(dict(img=np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(TypeError, match='LoadImageFast.*RandomFlip'):
        RandomFlipTensor(prob=1.0).transform(dict(img=np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(ValueError, match="backend='pillow'"):
        RandomResizedCropTensor(224, backend='cv2')
    with pytest.raises(ValueError, match='interpolation'):
        RandomResizedCropTensor(224, interpolation='nearest')
    with pytest.raises(ValueError, match='gt_bboxes'):
        RandomFlipTensor(prob=1.0).transform(dict(img=torch.zeros(3, 4, 4),
                                                  gt_bboxes=np.zeros((1, 4))))


def test_flip_directions_and_rectangular_output():
    img = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    for direction, dims in (('horizontal', (-1, )), ('vertical', (-2, )),
                            ('diagonal', (-2, -1))):
        out = RandomFlipTensor(prob=1.0, direction=direction).transform(dict(img=img))
        assert out['flip'] and out['flip_direction'] == direction
        assert torch.equal(out['img'], img.flip(dims))
    out = RandomFlipTensor(prob=0.0).transform(dict(img=img))
    assert not out['flip'] and out['img'] is img
    crop = RandomResizedCropTensor((48, 64)).transform(
        dict(img=torch.randint(0, 255, (3, 100, 120), dtype=torch.uint8)))
    assert crop['img'].shape == (3, 48, 64) and crop['img_shape'] == (48, 64)
    x1, y1, x2, y2 = crop['crop_bbox']
    assert 0 <= x1 <= x2 < 120 and 0 <= y1 <= y2 < 100
    # float tensors (the GPU path) take the same resize
    f = RandomResizedCropTensor(32).transform(dict(img=torch.rand(3, 50, 50)))
    assert f['img'].dtype == torch.float32 and f['img'].shape == (3, 32, 32)
    assert math.isfinite(float(f['img'].sum()))
