"""Image loading that names the file when it cannot be read or decoded."""
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """:class:`mmcv.transforms.LoadImageFromFile` with a clear error for bad files.

    A missing, empty, truncated or non-image file raises an ``OSError`` naming the file (mmcv's
    loader may otherwise fail later with an unrelated ``'NoneType' object`` error).
    """

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img_bytes = fileio.get(filename, backend_args=self.backend_args)
        except Exception as e:  # noqa: BLE001 - re-raised with the file named
            raise OSError(f'cannot read image file {filename!r}: {e}') from e
        try:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:  # noqa: BLE001
            img = None
            err = e
        else:
            err = None
        if not isinstance(img, np.ndarray) or img.size == 0:
            if self.ignore_empty:
                return None
            raise OSError(f'corrupt or unsupported image file {filename!r} '
                          f'({len(img_bytes)} bytes could not be decoded)'
                          + (f': {err}' if err else ''))
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
