"""mmpretrain's ``RandomResizedCrop`` and ``RandomFlip`` for C x H x W uint8 tensors.

Same sampling code, other pixels engine: the crop box and the flip come from mmpretrain's /
mmcv's own methods (``rand_crop_params``, ``_choose_direction``: the same ``np.random`` calls in
the same order, so under one seed the two pipelines pick the same boxes and flips), and the crop
is resized by torch's antialiased resampler (``torchvision.transforms.v2.functional
.resized_crop``), a port of Pillow's: on uint8 CPU tensors it runs torch's native uint8 kernel,
about 8x faster than the pipeline's ``mmcv.imresize(backend='pillow')`` (which also copies the
crop in and out of a PIL image). The output differs from Pillow's by rounding only: at most
2 grey levels (bicubic; mean difference well under 0.1), measured in
``tests/test_datasets/test_fast_pipeline.py`` (see docs/BENCHMARK.md, "Input pipeline").

They run on any device: :class:`~pcae_mm.datasets.GPUDecodeDataPreprocessor` applies the same
objects to images decoded on the GPU.
"""
from typing import Tuple

import torch
from mmcv.transforms import RandomFlip
from mmpretrain.datasets.transforms import RandomResizedCrop
from mmpretrain.registry import TRANSFORMS
from torchvision.transforms.v2 import functional as F

#: ``interpolation`` values whose torch antialiased resampling matches Pillow's (same filters).
INTERPOLATIONS = {
    'bilinear': F.InterpolationMode.BILINEAR,
    'bicubic': F.InterpolationMode.BICUBIC,
}


class _Shape:
    """What ``RandomResizedCrop.rand_crop_params`` reads from an image: ``shape[:2]``."""

    def __init__(self, height: int, width: int) -> None:
        self.shape = (height, width)


def check_tensor_image(img, transform: str) -> torch.Tensor:
    """``img`` if it is a C x H x W tensor; else a ``TypeError`` naming the fix."""
    if not isinstance(img, torch.Tensor) or img.ndim != 3:
        got = (f'{type(img).__name__} of shape {tuple(img.shape)}'
               if hasattr(img, 'shape') else type(img).__name__)
        raise TypeError(
            f'{transform} takes the C x H x W uint8 tensor that LoadImageFast gives, got a '
            f'{got}. After LoadImageChecked (H x W x C numpy arrays) use mmpretrain\'s '
            'RandomResizedCrop / RandomFlip instead')
    return img


@TRANSFORMS.register_module()
class RandomResizedCropTensor(RandomResizedCrop):
    """:class:`mmpretrain.datasets.transforms.RandomResizedCrop` on a C x H x W tensor.

    The crop box is drawn by the parent's ``rand_crop_params`` (area fraction uniform in
    ``crop_ratio_range``, log-uniform aspect ratio in ``aspect_ratio_range``, up to
    ``max_attempts`` tries, then its centre-crop fallback), so the distribution is mmpretrain's
    by construction. The box is resized to ``scale`` with antialiasing, which is what Pillow does
    (``backend='pillow'`` in the parent).

    **Required keys:** ``img`` (C x H x W tensor, uint8 or float, any device).
    **Modified keys:** ``img`` (C x scale_h x scale_w, same dtype, contiguous), ``img_shape``.
    **Added keys:** ``crop_bbox`` (x1, y1, x2, y2, inclusive, as ``mmcv.imcrop`` takes it).

    Args:
        scale (int | tuple): Output size, ``(h, w)`` or one side for a square.
        crop_ratio_range (tuple): Range of the crop's area fraction. Defaults to (0.08, 1.0).
        aspect_ratio_range (tuple): Range of width / height. Defaults to (3/4, 4/3).
        max_attempts (int): Random tries before the centre-crop fallback. Defaults to 10.
        interpolation (str): ``'bicubic'`` (default) or ``'bilinear'``.
        backend (str): Only ``'pillow'``: the resampling reproduced (antialiased). The cv2
            backend's resampling (no antialiasing) is not offered.
    """

    def __init__(self,
                 scale,
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 interpolation: str = 'bicubic',
                 backend: str = 'pillow') -> None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'RandomResizedCropTensor interpolation must be one of '
                             f'{tuple(INTERPOLATIONS)}, got {interpolation!r}')
        if backend != 'pillow':
            raise ValueError(
                f"RandomResizedCropTensor reproduces backend='pillow' (antialiased resizing), "
                f'got backend={backend!r}; use RandomResizedCrop after LoadImageChecked for cv2')
        super().__init__(scale, crop_ratio_range=crop_ratio_range,
                         aspect_ratio_range=aspect_ratio_range, max_attempts=max_attempts,
                         interpolation=interpolation, backend=backend)

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """(top, left, crop height, crop width) for an image of ``height`` x ``width``, drawn
        with mmpretrain's sampler."""
        return self.rand_crop_params(_Shape(height, width))

    def resize_box(self, img: torch.Tensor, box: Tuple[int, int, int, int]) -> torch.Tensor:
        """Crop ``box`` = (top, left, h, w) of C x H x W ``img``, resized to ``self.scale``."""
        top, left, h, w = box
        out = F.resized_crop(img, top, left, h, w, size=list(self.scale),
                             interpolation=INTERPOLATIONS[self.interpolation], antialias=True)
        return out.contiguous()

    def transform(self, results: dict) -> dict:
        img = check_tensor_image(results['img'], type(self).__name__)
        top, left, h, w = box = self.crop_box(int(img.shape[-2]), int(img.shape[-1]))
        results['img'] = self.resize_box(img, box)
        results['img_shape'] = tuple(results['img'].shape[-2:])
        results['crop_bbox'] = (left, top, left + w - 1, top + h - 1)
        return results


@TRANSFORMS.register_module()
class RandomFlipTensor(RandomFlip):
    """:class:`mmcv.transforms.RandomFlip` (what ``type='RandomFlip'`` builds) on a C x H x W
    tensor image: the same direction draw, the same ``flip`` / ``flip_direction`` keys.

    Only the image is flipped; results with boxes, masks or key points are refused (the
    pre-training pipelines have none).

    Args:
        prob (float | list): Flip probability (per direction for a list).
        direction (str | list): ``'horizontal'`` (default), ``'vertical'``, ``'diagonal'``.
    """

    DIMS = {'horizontal': (-1, ), 'vertical': (-2, ), 'diagonal': (-2, -1)}

    def _flip(self, results: dict) -> None:
        for key in ('gt_bboxes', 'gt_seg_map', 'gt_keypoints'):
            if results.get(key) is not None:
                raise ValueError(f'RandomFlipTensor flips the image only; the results have '
                                 f'{key!r}: use RandomFlip with LoadImageChecked')
        img = check_tensor_image(results['img'], type(self).__name__)
        results['img'] = img.flip(self.DIMS[results['flip_direction']])
