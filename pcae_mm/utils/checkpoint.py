"""Make mmengine checkpoints loadable on torch >= 2.6 (``weights_only=True`` by default).

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``. Its checkpoints hold, besides
tensors, the message hub's ``HistoryBuffer`` objects and numpy arrays / scalars, which torch >= 2.6
refuses to unpickle by default, so ``--resume`` fails. Instead of turning the safety check off
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), pcae_mm, once at import:

* pickles ``HistoryBuffer`` as ``HistoryBuffer(log_history, count_history, max_length)`` (by
  default its pickle also holds its statistics functions through ``getattr``, and allowing
  ``getattr`` would re-open arbitrary code execution);
* allow-lists ``HistoryBuffer`` and the numpy array / dtype / scalar reconstructors.
"""
import copyreg
import importlib

import torch


def _numpy_globals() -> list:
    import numpy as np
    major = int(np.__version__.split('.')[0])
    multiarray = importlib.import_module(
        'numpy._core.multiarray' if major >= 2 else 'numpy.core.multiarray')
    safe = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    # Scalar types pickled as dtype arguments (e.g. numpy.float64 in HistoryBuffer histories).
    safe += [np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_]
    return safe


def _reduce_history_buffer(buf):
    return type(buf), (buf._log_history, buf._count_history, buf.max_length)


def allow_mmengine_checkpoints() -> bool:
    """Allow-list the non-tensor globals of mmengine checkpoints for ``torch.load``.

    Returns:
        bool: False on torch versions without ``add_safe_globals`` (nothing to do there).
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    from mmengine.logging import HistoryBuffer
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    add([HistoryBuffer] + _numpy_globals())
    return True
