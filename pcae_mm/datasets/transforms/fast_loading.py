"""Loading for the fast pre-training pipelines (issue 24).

* :class:`LoadImageFast`: decode on the CPU into a 3 x H x W uint8 tensor, for
  :class:`~.tensor_processing.RandomResizedCropTensor` and
  :class:`~.tensor_processing.RandomFlipTensor`.
* :class:`LoadImageBytes`: the workers only read the file; the data preprocessor
  :class:`~pcae_mm.datasets.GPUDecodeDataPreprocessor` decodes a whole batch on the GPU.

Both keep :class:`~.loading.LoadImageChecked`'s contract: a missing file, a truncated JPEG / PNG
or an undecodable file raises an ``OSError`` naming it (or is skipped, counted and logged under
``on_corrupt='skip'``). A file the fast decoder does not take (PNG and other formats, CMYK /
YCCK or 12-bit JPEGs, lossless / arithmetic-coded JPEGs) is decoded by the checked loader
instead - the same pixels as the shipped pipeline - and the fallback is logged with the file
name and the reason (the first ``log_fallbacks`` files of each reason, then every 1000th), and
counted in :attr:`LoadImageFast.fallbacks`.
"""
import warnings
from collections import Counter
from typing import Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

from .jpeg_header import JPEGInfo, jpeg_info
from .loading import LoadImageChecked, truncation

CHANNEL_ORDERS = ('bgr', 'rgb')
DECODERS = ('cv2', 'torchvision')
_TORCHVISION_OK: Optional[bool] = None


def check_torchvision_decoder() -> None:
    """Raise ``ImportError`` (with the fix) when torchvision cannot decode JPEG on the CPU.

    torchvision >= 0.29 marks its image decoders deprecated in favour of TorchCodec; a build
    without them (or without its image extension) fails here, once, instead of at every file.
    """
    global _TORCHVISION_OK
    if _TORCHVISION_OK:
        return
    try:
        from torchvision.io import encode_jpeg
        with warnings.catch_warnings():  # torchvision 0.29's deprecation notice
            warnings.simplefilter('ignore', DeprecationWarning)
            probe = encode_jpeg(torch.full((3, 8, 8), 128, dtype=torch.uint8))
        decode_jpeg_rgb(probe.numpy().tobytes())
    except Exception as e:  # noqa: BLE001 - re-raised with the fix
        _TORCHVISION_OK = False
        raise ImportError(
            f'torchvision cannot decode JPEG here ({type(e).__name__}: {e}). Install the '
            "torchvision that matches torch (tools/setup_env.sh does), or use decoder='cv2'"
        ) from e
    _TORCHVISION_OK = True


def decode_jpeg_rgb(data: bytes, exif: bool = True) -> torch.Tensor:
    """3 x H x W uint8 RGB tensor of JPEG ``data`` by torchvision (libjpeg-turbo), EXIF
    orientation applied as OpenCV applies it. Raises ``RuntimeError`` on a decoder error."""
    from torchvision.io import ImageReadMode, decode_jpeg
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():  # torchvision 0.29's per-call deprecation notice
        warnings.simplefilter('ignore', DeprecationWarning)
        return decode_jpeg(buf, mode=ImageReadMode.RGB, apply_exif_orientation=exif)


def hwc_to_chw(img: np.ndarray, reverse_channels: bool = False) -> torch.Tensor:
    """Contiguous 3 x H x W uint8 tensor of an H x W x 3 array (channels reversed if asked)."""
    if reverse_channels:
        img = img[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def unsupported_reason(data: bytes, info: Optional[JPEGInfo]) -> str:
    """Why the fast JPEG decoder does not take ``data`` (for the fallback log)."""
    if info is None:
        if data[:8] == b'\x89PNG\r\n\x1a\n':
            return 'PNG file'
        if data[:2] == b'\xff\xd8':
            return 'JPEG header not understood'
        return 'not a JPEG file'
    if info.components == 4:
        return 'CMYK/YCCK JPEG (4 channels)'
    if info.precision != 8:
        return f'{info.precision}-bit JPEG'
    if info.components not in (1, 3):
        return f'JPEG with {info.components} channels'
    return f'{info.process} JPEG'


@TRANSFORMS.register_module()
class LoadImageFast(LoadImageChecked):
    """Load an image as a 3 x H x W uint8 tensor, fast: the first step of the fast pre-training
    pipeline (``LoadImageFast`` + ``RandomResizedCropTensor`` + ``RandomFlipTensor`` +
    ``PackInputs``).

    The tensor holds what :class:`LoadImageChecked` + ``PackInputs`` give (same channel order,
    dtype and layout), so the data preprocessor is unchanged (``to_rgb=True`` for the default
    BGR). Decoders:

    * ``'cv2'`` (default): OpenCV's libjpeg-turbo, the checked loader's own decoder (identical
      pixels for every file; BGR out, so no channel copy), wrapped as a tensor without a copy.
    * ``'torchvision'``: ``torchvision.io.decode_jpeg`` (libjpeg-turbo too) for 8-bit grey /
      colour baseline or progressive JPEGs, EXIF orientation applied; everything else goes to
      the checked loader (logged, counted).

    Which is faster depends on the machine; ``python -m tools.analysis.benchmark --data-only``
    times both (docs/BENCHMARK.md).

    **Required keys:** ``img_path``. **Added keys:** ``img`` (3 x H x W uint8 tensor),
    ``img_shape``, ``ori_shape`` ((H, W)).

    Args:
        decoder (str): ``'cv2'`` or ``'torchvision'``. Defaults to ``'cv2'``.
        channel_order (str): ``'bgr'`` (default, what mmcv's loaders give) or ``'rgb'``.
        on_corrupt (str): ``'error'`` (default) or ``'skip'``, as in LoadImageChecked.
        log_fallbacks (int): Files named in the log per fallback reason (then every 1000th).
        **kwargs: ``backend_args`` and ``ignore_empty`` of LoadImageFromFile; ``color_type``
            must stay ``'color'`` and ``to_float32`` False (use LoadImageChecked otherwise).
    """

    def __init__(self,
                 decoder: str = 'cv2',
                 channel_order: str = 'bgr',
                 on_corrupt: str = 'error',
                 log_fallbacks: int = 10,
                 **kwargs) -> None:
        super().__init__(on_corrupt=on_corrupt, **kwargs)
        name = type(self).__name__
        if decoder not in DECODERS:
            raise ValueError(f'{name} decoder must be one of {DECODERS}, got {decoder!r}')
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f'{name} channel_order must be one of {CHANNEL_ORDERS}, '
                             f'got {channel_order!r}')
        if self.to_float32 or self.color_type != 'color':
            raise ValueError(f'{name} gives 3-channel uint8 tensors (color_type=\'color\', '
                             'to_float32=False); use LoadImageChecked for other settings')
        if decoder == 'torchvision':
            check_torchvision_decoder()
        self.decoder = decoder
        self.channel_order = channel_order
        self.log_fallbacks = log_fallbacks
        self.fallbacks: Counter = Counter()

    def _note_fallback(self, filename: str, reason: str) -> None:
        self.fallbacks[reason] += 1
        n = self.fallbacks[reason]
        if n <= self.log_fallbacks or n % 1000 == 0:
            print_log(f'{type(self).__name__}: {filename!r} ({reason}) decoded by the '
                      f'checked loader instead ({n} such files so far in this process)',
                      logger='current', level=30)

    def _checked(self, data: bytes, filename: str, reason: str) -> Optional[torch.Tensor]:
        img = self.decode(data, filename)  # raises, or None under on_corrupt='skip'
        if img is None:
            return None
        self._note_fallback(filename, reason)
        return hwc_to_chw(img, reverse_channels=self.channel_order == 'rgb')

    def decode_tensor(self, data: bytes, filename: str) -> Optional[torch.Tensor]:
        """3 x H x W uint8 tensor of a file's bytes in :attr:`channel_order`; None when a bad
        file is skipped (``on_corrupt='skip'``)."""
        if self.decoder == 'cv2':
            img = self.decode(data, filename)  # the checked loader itself
            if img is None:
                return None
            if self.channel_order == 'rgb':
                return hwc_to_chw(img, reverse_channels=True)
            # a 3 x H x W view of the H x W x 3 array: no copy (the resize reads it in place)
            return torch.from_numpy(img).permute(2, 0, 1)
        cut = truncation(data)
        if cut is not None:
            return self._bad(filename, f'{cut}, {len(data)} bytes')
        info = jpeg_info(data)
        if info is None or not info.fast_decodable:
            return self._checked(data, filename, unsupported_reason(data, info))
        try:
            img = decode_jpeg_rgb(data)
        except RuntimeError as e:
            return self._checked(data, filename, f'JPEG torchvision could not decode ({e})')
        if self.channel_order == 'bgr':  # numpy's reversed copy: 3x faster than Tensor.flip
            return torch.from_numpy(np.ascontiguousarray(img.numpy()[::-1]))
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        img = self.decode_tensor(self.read(filename), filename)
        if img is None:
            return None
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = (int(img.shape[1]), int(img.shape[2]))
        return results


@TRANSFORMS.register_module()
class LoadImageBytes(LoadImageFast):
    """Read an image file for decoding on the GPU: the first step of the GPU-decode pipeline
    (``LoadImageBytes`` + ``PackInputs``, ``collate_fn=dict(type='pseudo_collate')``, and
    :class:`~pcae_mm.datasets.GPUDecodeDataPreprocessor` as the model's data preprocessor).

    ``img`` is the file's bytes as a 1-D uint8 tensor when the file is an 8-bit 3-channel
    baseline or progressive JPEG without EXIF rotation (what nvjpeg decodes batched); any other
    file (grey, CMYK, rotated, PNG, ...) is decoded here on the CPU (as :class:`LoadImageFast`
    does, fallbacks logged) into a 3 x H x W uint8 **RGB** tensor, the order nvjpeg gives, and
    the preprocessor handles both kinds in one batch. Truncated and unreadable files fail (or
    are skipped) here, naming the file, as in LoadImageChecked.

    **Added keys:** ``img`` (1-D uint8 tensor, or 3 x H x W RGB tensor), ``img_shape`` and
    ``ori_shape`` ((H, W), read from the JPEG header without decoding).

    Args:
        decoder (str): CPU decoder of the files decoded here. Defaults to ``'cv2'``.
        on_corrupt (str): ``'error'`` (default) or ``'skip'``.
        log_fallbacks (int): As in LoadImageFast.
        **kwargs: ``backend_args``, ``ignore_empty``.
    """

    def __init__(self, decoder: str = 'cv2', on_corrupt: str = 'error',
                 log_fallbacks: int = 10, **kwargs) -> None:
        if 'channel_order' in kwargs:
            raise ValueError('LoadImageBytes always gives RGB (the order nvjpeg decodes to); '
                             'the data preprocessor converts to the model\'s order')
        super().__init__(decoder=decoder, channel_order='rgb', on_corrupt=on_corrupt,
                         log_fallbacks=log_fallbacks, **kwargs)
        self.decoded_here: Counter = Counter()

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        data = self.read(filename)
        cut = truncation(data)
        if cut is not None:
            return self._bad(filename, f'{cut}, {len(data)} bytes')
        info = jpeg_info(data)
        if (info is not None and info.fast_decodable and info.components == 3
                and info.orientation == 1):
            results['img'] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            results['img_shape'] = results['ori_shape'] = (info.height, info.width)
            return results
        self.decoded_here[unsupported_reason(data, info) if info is None
                          or not info.fast_decodable else
                          'grey JPEG' if info.components == 1 else 'EXIF-rotated JPEG'] += 1
        img = self.decode_tensor(data, filename)
        if img is None:
            return None
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = (int(img.shape[1]), int(img.shape[2]))
        return results

