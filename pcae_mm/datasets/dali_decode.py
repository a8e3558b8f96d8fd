"""Decode, crop, resize and flip with NVIDIA DALI: the optional DALI backend of the GPU-decode
pipeline (issue 24).

The dataloader workers read files as for :class:`~pcae_mm.datasets.GPUDecodeDataPreprocessor`
(``LoadImageBytes`` + ``PackInputs`` + ``pseudo_collate``); this preprocessor draws each image's
crop box and flip with the same transform objects (mmpretrain's sampler, the same ``np.random``
calls in the same order: under one seed the same boxes and flips as the fast CPU and the
GPU-decode pipelines), then one DALI pipeline decodes only the crop's region of every JPEG
(``fn.decoders.image_slice``: nvjpeg through DALI's ``mixed`` decoder on CUDA, libjpeg-turbo
on a CPU), resizes it with antialiasing (``fn.resize``) and flips it, in DALI's own threads.

NVIDIA DALI is never required: ``pip install nvidia-dali-cuda120`` (or ``-cuda130``, matching
torch's CUDA) enables this class; without it, building it says so and names the GPU-decode
preprocessor, which needs no extra package. DALI runs on a CPU too (``device_id=None``), which
is how the tests check it.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from mmpretrain.registry import MODELS

from .gpu_decode import GPUDecodeDataPreprocessor
from .transforms.jpeg_header import jpeg_info
from .transforms.tensor_processing import RandomFlipTensor, RandomResizedCropTensor

#: pip packages of NVIDIA DALI (one per CUDA major version; any of them runs on a CPU).
DALI_PACKAGES = ('nvidia-dali-cuda120', 'nvidia-dali-cuda130')

#: (top, left, height, width) of a crop box and (horizontal, vertical) flips of one image.
Draw = Tuple[Tuple[int, int, int, int], Tuple[int, int]]


def import_dali():
    """The ``nvidia.dali`` module, or an ``ImportError`` naming the packages and the
    alternative."""
    try:
        import nvidia.dali as dali
        import nvidia.dali.plugin.pytorch  # noqa: F401  (feed_ndarray)
    except ImportError as err:
        raise ImportError(
            f'DALIDataPreprocessor needs NVIDIA DALI ({err}): pip install {DALI_PACKAGES[0]} '
            f'(or {DALI_PACKAGES[1]}, matching torch\'s CUDA), or use '
            "data_preprocessor=dict(type='GPUDecodeDataPreprocessor', ...), which decodes on "
            'the GPU with torchvision and needs no extra package') from err
    return dali


def dali_installed() -> bool:
    """Whether NVIDIA DALI imports here (what :func:`import_dali` needs)."""
    try:
        import_dali()
    except ImportError:
        return False
    return True


def dali_error(err: RuntimeError) -> str:
    """The informative lines of a DALI pipeline error (operator and failure, no traceback)."""
    lines = [line.strip() for line in str(err).splitlines()]
    keep = [line for line in lines if line.startswith(('Error in', 'Failed', 'Assert'))]
    return ' '.join(keep or lines[:1]).rstrip(' :,')


def build_dali_pipeline(batch_size: int, device_id: Optional[int], size: Tuple[int, int],
                        interpolation: str, num_threads: int):
    """A built DALI pipeline fed per batch: ``jpegs`` (1-D uint8), ``anchor`` / ``shape``
    ((top, left) / (height, width), int32), ``flip_h`` / ``flip_v`` (int32 scalars); output
    B x 3 x size RGB uint8. ``device_id=None``: everything on the CPU."""
    dali = import_dali()
    fn, types = dali.fn, dali.types
    interp = {'bicubic': types.INTERP_CUBIC, 'bilinear': types.INTERP_LINEAR}[interpolation]

    @dali.pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id,
                       prefetch_queue_depth=1, exec_async=False, exec_pipelined=False)
    def graph():
        jpegs = fn.external_source(name='jpegs', dtype=types.UINT8, ndim=1)
        anchor = fn.external_source(name='anchor', dtype=types.INT32, ndim=1)
        shape = fn.external_source(name='shape', dtype=types.INT32, ndim=1)
        flip_h = fn.external_source(name='flip_h', dtype=types.INT32, ndim=0)
        flip_v = fn.external_source(name='flip_v', dtype=types.INT32, ndim=0)
        img = fn.decoders.image_slice(  # H x W x 3, only the crop's region decoded
            jpegs, anchor, shape, device='cpu' if device_id is None else 'mixed',
            output_type=types.RGB, axis_names='HW', normalized_anchor=False,
            normalized_shape=False, adjust_orientation=False)
        img = fn.resize(img, size=list(size), interp_type=interp, antialias=True)
        img = fn.flip(img, horizontal=flip_h, vertical=flip_v)
        return fn.transpose(img, perm=[2, 0, 1])  # 3 x h x w

    pipe = graph()
    pipe.build()
    return pipe


@MODELS.register_module()
class DALIDataPreprocessor(GPUDecodeDataPreprocessor):
    """:class:`~pcae_mm.datasets.GPUDecodeDataPreprocessor` whose JPEGs are decoded, cropped,
    resized and flipped by one NVIDIA DALI pipeline on the model's device.

    The crop box and flip of each image are drawn by ``augments`` (a RandomResizedCropTensor,
    optionally followed by a RandomFlipTensor) exactly as the GPU-decode and fast CPU pipelines
    draw them; DALI then decodes only the box (region-of-interest decoding) and resizes it with
    antialiasing: the pixels differ from the torch resampler's by rounding (measured in
    ``tests/test_datasets/test_dali_decode.py``), the boxes and flips are equal. Images the
    worker decoded (grey, CMYK, rotated, PNG: 3-D tensors) take the parent's torch path with
    their drawn box. The data samples get ``img_shape``, ``flip``, ``flip_direction`` and
    ``crop_bbox`` as in the other pipelines.

    When DALI fails on a batch (a file its decoder rejects), the batch's encoded images are
    decoded by the parent (which retries each file, falls back to the CPU and names a file no
    decoder takes) and cropped with the boxes already drawn, with a warning; the pipeline is
    rebuilt for the next batch.

    Args:
        augments (list[dict]): ``[dict(type='RandomResizedCropTensor', ...)]``, optionally
            followed by ``dict(type='RandomFlipTensor', ...)``.
        num_threads (int): DALI's CPU threads per process. Defaults to 4.
        **kwargs: SelfSupDataPreprocessor's (``mean``, ``std``, ``to_rgb``, ...).
    """

    def __init__(self, augments: Sequence[dict] = (), num_threads: int = 4, **kwargs) -> None:
        import_dali()
        super().__init__(augments=augments, **kwargs)
        kinds = [type(t) for t in self.augments]
        if kinds not in ([RandomResizedCropTensor], [RandomResizedCropTensor, RandomFlipTensor]):
            raise ValueError(
                'DALIDataPreprocessor augments must be a RandomResizedCropTensor, optionally '
                f'followed by a RandomFlipTensor, got {[k.__name__ for k in kinds]}')
        if num_threads < 1:
            raise ValueError(f'DALIDataPreprocessor num_threads must be >= 1, got {num_threads}')
        self.num_threads = num_threads
        self.dali_fallbacks = 0
        self._pipe = None
        self._pipe_key: Optional[tuple] = None

    def __getstate__(self) -> dict:  # copies (EMA, deepcopy) build their own pipeline
        state = self.__dict__.copy()
        state['_pipe'] = state['_pipe_key'] = None
        return state

    def draw(self, height: int, width: int) -> Draw:
        """The crop box and flips of one image, drawn as the CPU pipeline draws them."""
        crop = self.augments[0]
        box = crop.crop_box(height, width)
        direction = self.augments[1]._choose_direction() if len(self.augments) > 1 else None
        return box, (int(direction in ('horizontal', 'diagonal')),
                     int(direction in ('vertical', 'diagonal')))

    def pipeline(self, batch_size: int):
        """The DALI pipeline for this device, rebuilt for a larger batch."""
        device_id = (None if self.device.type != 'cuda' else
                     self.device.index if self.device.index is not None else
                     torch.cuda.current_device())
        crop = self.augments[0]
        key = (device_id, crop.scale, crop.interpolation)
        if self._pipe is None or self._pipe_key[0] != key or self._pipe_key[1] < batch_size:
            self._pipe = build_dali_pipeline(batch_size, device_id, crop.scale,
                                             crop.interpolation, self.num_threads)
            self._pipe_key = (key, batch_size)
        return self._pipe

    def run_dali(self, encoded: Sequence[torch.Tensor], draws: Sequence[Draw]) -> torch.Tensor:
        """N x 3 x S x S uint8 RGB on :attr:`device`: the DALI pipeline on N JPEGs."""
        from nvidia.dali.plugin.pytorch import feed_ndarray
        pipe = self.pipeline(len(encoded))
        pipe.feed_input('jpegs', [x.numpy() for x in encoded])
        pipe.feed_input('anchor', [np.array(box[:2], np.int32) for box, _ in draws])
        pipe.feed_input('shape', [np.array(box[2:], np.int32) for box, _ in draws])
        pipe.feed_input('flip_h', [np.array(flips[0], np.int32) for _, flips in draws])
        pipe.feed_input('flip_v', [np.array(flips[1], np.int32) for _, flips in draws])
        out = pipe.run()[0].as_tensor()
        batch = torch.empty(out.shape(), dtype=torch.uint8, device=self.device)
        stream = torch.cuda.current_stream(self.device) if self.device.type == 'cuda' else None
        feed_ndarray(out, batch, cuda_stream=stream)
        return batch

    def crop_decoded(self, img: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The torch path for one decoded 3 x H x W image with its drawn box and flips."""
        box, (flip_h, flip_v) = draw
        out = self.augments[0].resize_box(img.to(self.device), box)
        dims = [d for d, f in ((-1, flip_h), (-2, flip_v)) if f]
        return out.flip(dims) if dims else out

    def crops(self, items: Sequence[torch.Tensor],
              samples: Optional[Sequence] = None) -> torch.Tensor:
        """B x 3 x S x S uint8 RGB crops of a list of encoded (1-D) or decoded (3-D) images:
        DALI for the JPEGs, the torch path for the others, with the boxes drawn here."""
        items = list(items)
        infos = [jpeg_info(x.numpy().tobytes()) if x.ndim == 1 else None for x in items]
        for i, (x, info) in enumerate(zip(items, infos)):
            if x.ndim == 1 and info is None:  # not a JPEG after all: the parent decodes or names it
                items[i] = self.decode([x], [samples[i]] if samples else None)[0]
        draws = [self.draw(info.height, info.width) if info is not None else
                 self.draw(int(x.shape[-2]), int(x.shape[-1])) for x, info in zip(items, infos)]
        out: List[Optional[torch.Tensor]] = [
            self.crop_decoded(x, d) if x.ndim == 3 else None for x, d in zip(items, draws)]
        encoded = [i for i, x in enumerate(items) if x.ndim == 1]
        if encoded:
            try:
                crops = list(self.run_dali([items[i] for i in encoded],
                                           [draws[i] for i in encoded]))
            except RuntimeError as err:
                self._pipe = None  # DALI's pipeline is unusable after an error
                self.dali_fallbacks += 1
                print_log(f'DALIDataPreprocessor: DALI failed on a batch ({dali_error(err)}); '
                          'decoding it without DALI', logger='current', level=30)
                decoded = self.decode([items[i] for i in encoded],
                                      [samples[i] for i in encoded] if samples else None)
                crops = [self.crop_decoded(img, draws[i]) for img, i in zip(decoded, encoded)]
            for i, crop in zip(encoded, crops):
                out[i] = crop
        if samples is not None:
            for sample, ((top, left, h, w), (flip_h, flip_v)), img in zip(samples, draws, out):
                direction = ('diagonal' if flip_h and flip_v else 'horizontal' if flip_h else
                             'vertical' if flip_v else None)
                sample.set_metainfo(dict(img_shape=tuple(img.shape[-2:]), flip=bool(direction),
                                         flip_direction=direction,
                                         crop_bbox=(left, top, left + w - 1, top + h - 1)))
        return torch.stack(out)
