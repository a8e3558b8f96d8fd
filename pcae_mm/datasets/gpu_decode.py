"""Decode and augment on the GPU: the data preprocessor of the GPU-decode pipeline (issue 24).

The dataloader workers only read files (:class:`~pcae_mm.datasets.transforms.LoadImageBytes`);
this preprocessor decodes the whole batch at once with ``torchvision.io.decode_jpeg(list,
device=...)`` (nvjpeg on CUDA: batched hardware decoding of baseline JPEGs on A100 / H100 /
H200, the others in software on the GPU), applies the random resized crop and flip on the
device with the same transform objects the fast CPU pipeline uses (so the same sampler and,
under one seed, the same boxes and flips), then converts the channel order and normalises as
mmpretrain's :class:`SelfSupDataPreprocessor` does. On a machine without CUDA it decodes on the
CPU (same code path; how the tests check it).
"""
import warnings
from typing import List, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmpretrain.models.utils import SelfSupDataPreprocessor
from mmpretrain.registry import MODELS, TRANSFORMS

from .transforms.fast_loading import decode_jpeg_rgb
from .transforms.tensor_processing import RandomFlipTensor, RandomResizedCropTensor

#: Augmentations this preprocessor runs on decoded tensors (in the given order).
DEVICE_TRANSFORMS = (RandomResizedCropTensor, RandomFlipTensor)


def is_per_sample_batch(inputs) -> bool:
    """True for the GPU-decode pipeline's ``pseudo_collate`` batch: a list of per-sample 1-D
    (encoded) or 3-D (decoded) tensors (SelfSupDataPreprocessor's own lists are of 4-D views)."""
    return (isinstance(inputs, (list, tuple)) and len(inputs) > 0
            and all(isinstance(x, torch.Tensor) and x.ndim in (1, 3) for x in inputs))


def decode_batch(encoded: List[torch.Tensor], device: torch.device) -> List[torch.Tensor]:
    """``torchvision.io.decode_jpeg`` of a list of 1-D uint8 CPU tensors onto ``device``
    (one batched call), RGB, 3 x H x W uint8 each."""
    from torchvision.io import ImageReadMode, decode_jpeg
    with warnings.catch_warnings():  # torchvision 0.29's per-call deprecation notice
        warnings.simplefilter('ignore', DeprecationWarning)
        out = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    return [out] if isinstance(out, torch.Tensor) else list(out)


@MODELS.register_module()
class GPUDecodeDataPreprocessor(SelfSupDataPreprocessor):
    """:class:`mmpretrain.models.utils.SelfSupDataPreprocessor` that also decodes JPEG bytes
    and runs the random resized crop and flip on the model's device.

    Batches of the GPU-decode pipeline (``LoadImageBytes`` + ``PackInputs`` with
    ``pseudo_collate``) are lists of per-sample tensors: 1-D JPEG bytes (decoded here, in one
    batched call) or 3 x H x W RGB images (files the worker decoded: grey, CMYK, rotated, PNG).
    Each image then goes through ``augments`` (per image, in order, drawing from ``np.random``
    as the CPU pipeline does), the crops are stacked (B x 3 x S x S), put in the model's channel
    order (``to_rgb=True``: RGB, as with the CPU pipelines and their BGR loaders), converted to
    float and normalised. The data samples' ``img_shape``, ``flip``, ``flip_direction`` and
    ``crop_bbox`` describe the crop, as the CPU pipeline's PackInputs records them.

    Any other batch (a stacked tensor from a CPU pipeline, e.g. the kNN hook's val loader) is
    processed exactly as SelfSupDataPreprocessor does.

    The augmentations run whenever the batch is encoded, in training and in the hooks that call
    the preprocessor with ``training=False`` (they see training batches): the crop is part of
    turning a file into a model input here.

    A JPEG the device decoder rejects is retried alone, then on the CPU (libjpeg-turbo) with a
    warning naming the file; a file no decoder takes raises an ``OSError`` naming it.

    Args:
        augments (list[dict]): Tensor transforms, e.g. ``[dict(type='RandomResizedCropTensor',
            scale=224, crop_ratio_range=(0.2, 1.0)), dict(type='RandomFlipTensor',
            prob=0.5)]``. Must contain a RandomResizedCropTensor (one size per batch).
        **kwargs: SelfSupDataPreprocessor's (``mean``, ``std``, ``to_rgb``, ...).
    """

    def __init__(self, augments: Sequence[dict] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.augments = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in augments]
        for t in self.augments:
            if not isinstance(t, DEVICE_TRANSFORMS):
                raise ValueError(
                    f'GPUDecodeDataPreprocessor augments must be among '
                    f'{[c.__name__ for c in DEVICE_TRANSFORMS]}, got {type(t).__name__}')
        if not any(isinstance(t, RandomResizedCropTensor) for t in self.augments):
            raise ValueError('GPUDecodeDataPreprocessor augments need a RandomResizedCropTensor '
                             '(images of one batch must come out the same size)')
        self.cpu_fallbacks = 0

    def _decode_one(self, data: torch.Tensor, sample) -> torch.Tensor:
        path = sample.metainfo.get('img_path', '<unknown file>') if sample is not None \
            else '<unknown file>'
        try:
            return decode_batch([data], self.device)[0]
        except RuntimeError as device_error:
            try:
                img = decode_jpeg_rgb(data.numpy().tobytes(), exif=False)
            except RuntimeError as cpu_error:
                raise OSError(
                    f'cannot decode image file {path!r}: {self.device} decoder: '
                    f'{device_error}; CPU decoder: {cpu_error}. Remove or replace it') \
                    from cpu_error
            self.cpu_fallbacks += 1
            print_log(f'GPUDecodeDataPreprocessor: {path!r} could not be decoded on '
                      f'{self.device} ({device_error}); decoded on the CPU instead',
                      logger='current', level=30)
            return img.to(self.device)

    def decode(self, items: Sequence[torch.Tensor],
               samples: Optional[Sequence] = None) -> List[torch.Tensor]:
        """3 x H x W uint8 RGB images on :attr:`device` for a list of encoded (1-D) or decoded
        (3-D, RGB) per-sample tensors."""
        out: List[Optional[torch.Tensor]] = [
            x.to(self.device, non_blocking=True) if x.ndim == 3 else None for x in items]
        encoded = [i for i, x in enumerate(items) if x.ndim == 1]
        if encoded:
            try:
                decoded = decode_batch([items[i] for i in encoded], self.device)
            except RuntimeError:  # one bad file fails the whole batched call: find it
                decoded = [self._decode_one(items[i], samples[i] if samples else None)
                           for i in encoded]
            for i, img in zip(encoded, decoded):
                out[i] = img
        return out

    def augment(self, images: Sequence[torch.Tensor],
                samples: Optional[Sequence] = None) -> torch.Tensor:
        """B x 3 x S x S uint8: ``augments`` applied to each image; the samples' metainfo
        updated as the CPU pipeline's PackInputs would have recorded it."""
        crops = []
        for k, img in enumerate(images):
            results = dict(img=img)
            for t in self.augments:
                results = t(results)
            crops.append(results['img'])
            if samples is not None:
                samples[k].set_metainfo({key: results[key] for key in
                                         ('img_shape', 'flip', 'flip_direction', 'crop_bbox')
                                         if key in results})
        return torch.stack(crops)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not is_per_sample_batch(inputs):
            return super().forward(data, training)
        samples = data.get('data_samples')
        batch = self.crops(inputs, samples)  # B x 3 x S x S, RGB
        return self.finish(batch, samples)

    def crops(self, items: Sequence[torch.Tensor],
              samples: Optional[Sequence] = None) -> torch.Tensor:
        """B x 3 x S x S uint8 RGB crops of a list of encoded (1-D) or decoded (3-D) images:
        decoded, then ``augments`` applied."""
        return self.augment(self.decode(items, samples), samples)

    def finish(self, batch: torch.Tensor, samples: Optional[Sequence]) -> dict:
        """The model's input from B x 3 x S x S uint8 RGB crops: its channel order, float,
        normalised (as SelfSupDataPreprocessor does), with the data samples."""
        if not self._channel_conversion:  # the model asked for the loaders' BGR order
            batch = batch[:, [2, 1, 0], ...]
        batch = batch.float()
        if self._enable_normalize:
            batch = (batch - self.mean) / self.std
        if samples is not None:
            samples = self.cast_data(list(samples))
        return {'inputs': batch, 'data_samples': samples}
