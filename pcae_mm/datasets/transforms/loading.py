"""Image loading that names the file when it cannot be read, decoded, or is truncated."""
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

ON_CORRUPT = ('error', 'skip')


def truncation(data: bytes) -> Optional[str]:
    """Why ``data`` is a truncated JPEG or PNG (None when it looks complete or is another
    format). Decoders fill a truncated image's missing part with grey/black without an error.
    """
    if data[:2] == b'\xff\xd8':
        tail = data.rstrip(b'\x00\r\n \t')  # some writers pad after the end marker
        if b'\xff\xd9' not in tail[-4096:]:
            return 'JPEG without its end-of-image marker (truncated)'
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        if b'IEND' not in data[-32:]:
            return 'PNG without its IEND chunk (truncated)'
    return None


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """:class:`mmcv.transforms.LoadImageFromFile` with a clear error for bad files.

    A missing, empty, truncated (JPEG / PNG cut short) or non-image file raises an ``OSError``
    naming the file (mmcv's loader may otherwise fail later with an unrelated ``'NoneType'
    object`` error, or train on a truncated image filled with grey).

    Args:
        on_corrupt (str): ``'error'`` (default) raises; ``'skip'`` drops the sample (the
            dataset then draws another one), logs a warning naming the file and counts the
            skipped files (:attr:`skipped`, in the warning). Missing files always raise.
        **kwargs: Arguments of :class:`~mmcv.transforms.LoadImageFromFile`.
    """

    def __init__(self, on_corrupt: str = 'error', **kwargs) -> None:
        super().__init__(**kwargs)
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f'on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}')
        self.on_corrupt = on_corrupt
        self.skipped = 0

    def _bad(self, filename: str, why: str) -> None:
        if self.on_corrupt == 'skip' or self.ignore_empty:
            self.skipped += 1
            print_log(f'skipped corrupt image {filename!r} ({why}); {self.skipped} skipped so '
                      'far by this loader (on_corrupt=\'skip\')', logger='current', level=30)
            return None
        raise OSError(f'corrupt or unsupported image file {filename!r}: {why}. Remove or '
                      f"replace it, or set on_corrupt='skip' in {type(self).__name__} to skip "
                      'such files (counted and logged)')

    def read(self, filename: str) -> bytes:
        """The file's bytes; an ``OSError`` naming it when it cannot be read (always raised,
        whatever ``on_corrupt`` says: a missing file is a wrong path, not a bad image)."""
        try:
            return fileio.get(filename, backend_args=self.backend_args)
        except Exception as e:  # noqa: BLE001 - re-raised with the file named
            raise OSError(f'cannot read image file {filename!r}: {e}') from e

    def decode(self, img_bytes: bytes, filename: str) -> Optional[np.ndarray]:
        """H x W x C image (mmcv's decoder, BGR for colour) of a file's bytes, checked: a
        truncated or undecodable file raises (or returns None under ``on_corrupt='skip'``)."""
        cut = truncation(img_bytes)
        if cut is not None:
            return self._bad(filename, f'{cut}, {len(img_bytes)} bytes')
        try:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:  # noqa: BLE001
            img = None
            err = e
        else:
            err = None
        if not isinstance(img, np.ndarray) or img.size == 0:
            return self._bad(filename, f'{len(img_bytes)} bytes could not be decoded'
                             + (f': {err}' if err else ''))
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        img = self.decode(self.read(filename), filename)
        if img is None:
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
