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
import os
import os.path as osp
from typing import Optional

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


# --------------------------------------------------------------------------------------------
# Safe and complete checkpoint files (issue 15)
# --------------------------------------------------------------------------------------------
class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used: incomplete, corrupt, unsafe or from another run."""


#: the start of a legacy (non-zip, ``_use_new_zipfile_serialization=False``) torch file after
#: its pickle PROTO opcode: torch's magic number 0x1950a86a20f9469cfc6c as a pickled LONG1
LEGACY_MAGIC = b'\x8a\x0a' + (0x1950a86a20f9469cfc6c).to_bytes(10, 'little')


def is_legacy_format(path: str) -> bool:
    """Whether ``path`` starts like a legacy (pre-zip) ``torch.save`` file."""
    with open(path, 'rb') as f:
        head = f.read(2 + len(LEGACY_MAGIC))
    return len(head) == 2 + len(LEGACY_MAGIC) and head[0] == 0x80 and head[2:] == LEGACY_MAGIC


def _truncation(e: BaseException) -> bool:
    """Whether a torch.load error means the file ended early (not: it is unsafe)."""
    import pickle
    text = str(e).lower()
    if isinstance(e, EOFError):
        return True
    if isinstance(e, pickle.UnpicklingError):
        return 'truncated' in text or 'ran out of input' in text
    return isinstance(e, RuntimeError) and ('unexpected eof' in text or 'corrupt' in text)


def check_complete(path: str, crc: bool = True) -> None:
    """Raise :class:`CheckpointError` naming ``path`` unless it is a complete torch file.

    ``torch.save`` writes a zip archive whose central directory comes last: a file cut short
    by a kill or a full disk has none (or a damaged one), which :mod:`zipfile` detects without
    unpickling anything. With ``crc`` every member's CRC is checked too (a full read). A
    legacy-format file (``_use_new_zipfile_serialization=False``, torch < 1.6 and some other
    tools) has no directory to check: it is recognised by its magic number and, with ``crc``,
    read completely (weights only) to find out whether it was cut short.
    """
    import zipfile
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    size = osp.getsize(path)
    reason = None
    if size == 0:
        reason = 'it is empty (0 bytes)'
    elif not zipfile.is_zipfile(path):
        if is_legacy_format(path):
            if not crc:
                return
            try:
                torch.load(path, map_location='cpu', weights_only=True)
            except Exception as e:  # noqa: BLE001 - classified below
                if not _truncation(e):
                    return  # e.g. unsafe globals: safe_load refuses it with that reason
                reason = (f'it is a legacy-format (non-zip) torch file cut short ({size} bytes: '
                          f'{type(e).__name__}: {str(e)[:120] or "end of file"})')
            else:
                return
        else:
            with open(path, 'rb') as f:
                head = f.read(16)
            if not head.startswith(b'PK'):  # neither the start of a zip nor of a legacy file
                raise CheckpointError(
                    f'{path!r} is not a torch checkpoint ({size} bytes starting with {head!r}: '
                    'neither a zip archive nor a legacy torch file). Check the path.')
            reason = f'it is not a complete torch checkpoint ({size} bytes, no zip directory)'
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip() if crc else None
            if bad is not None:
                reason = f'member {bad!r} fails its CRC check'
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            reason = f'its zip archive is damaged ({e})'
    if reason is not None:
        raise CheckpointError(
            f'checkpoint {path!r} is incomplete or corrupt: {reason}. It was probably written by '
            'a run killed during a save, or copied partially. Resume from an earlier complete '
            'checkpoint (`--resume` with no value picks the last complete one in the work dir).')


def safe_load(path, map_location='cpu', mmap: bool = False):
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    Args:
        path: A file path (or file object).
        map_location: As :func:`torch.load`. Defaults to ``'cpu'``.
        mmap (bool): Memory-map a zip checkpoint (its tensors are read on first use: cheap
            when only ``meta`` is needed); ignored for legacy-format files. Defaults to False.

    Raises:
        CheckpointError: the file is incomplete/corrupt, or holds pickled objects that are not
            weights (refused: unpickling them could run arbitrary code).
    """
    import pickle
    import zipfile
    if isinstance(path, str) and osp.isdir(path):
        raise CheckpointError(f'checkpoint {path!r} is a directory, not a checkpoint file')
    if isinstance(path, str) and osp.isfile(path):
        check_complete(path, crc=False)
        mmap = mmap and zipfile.is_zipfile(path)
    else:
        mmap = False
    try:
        return torch.load(path, map_location=map_location, weights_only=True,
                          **({'mmap': True} if mmap else {}))
    except pickle.UnpicklingError as e:
        if _truncation(e):
            raise CheckpointError(f'checkpoint {path!r} is incomplete or corrupt: {e}') from None
        lines = [ln.strip() for ln in str(e).splitlines() if 'global' in ln.lower()]
        raise CheckpointError(
            f'refused to load checkpoint {path!r}: it holds pickled objects that are not weights '
            '(loading it could run arbitrary code). Only load checkpoints from sources you '
            'trust' + (f'; torch says: {lines[0]}' if lines else '')) from None
    except (EOFError, RuntimeError) as e:
        if 'zip' in str(e).lower() or 'archive' in str(e).lower() or _truncation(e):
            raise CheckpointError(f'checkpoint {path!r} is incomplete or corrupt: {e}') from None
        raise


def load_from_local_safe(filename, map_location):
    """mmengine's local checkpoint loader, with ``weights_only=True`` passed explicitly."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(filename, map_location=map_location)


def load_from_ceph_safe(filename, map_location=None, backend='petrel'):
    import io
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return torch.load(buffer, map_location=map_location, weights_only=True)


def safe_checkpoint_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` pass ``weights_only=True`` explicitly.

    Covers local files (``load_from``, ``--resume``, ``Pretrained`` init_cfg) and s3/petrel;
    URLs go through ``torch.load``'s own default (``weights_only=True`` on torch >= 2.6, which
    setup.py requires).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe,
                                     force=True)
    CheckpointLoader.register_scheme(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'],
                                     loader=load_from_ceph_safe, force=True)


CKPT_PATTERN = r'^(epoch|iter)_(\d+)\.pth$'


def list_checkpoints(work_dir: str) -> list:
    """``epoch_N.pth`` / ``iter_N.pth`` files of ``work_dir``, newest (largest N) first."""
    import re
    if not osp.isdir(work_dir):
        return []
    found = []
    for name in os.listdir(work_dir):
        m = re.match(CKPT_PATTERN, name)
        if m:
            path = osp.join(work_dir, name)
            found.append((int(m.group(2)), osp.getmtime(path), path))
    return [p for _, _, p in sorted(found, reverse=True)]


def find_last_complete_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The checkpoint to auto-resume from: ``last_checkpoint``'s target when it is complete,
    else the newest complete ``epoch_N.pth`` / ``iter_N.pth``; None when there is none."""
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if target:
            candidates.append(target)
    candidates += [p for p in list_checkpoints(work_dir) if p not in candidates]
    for path in candidates:
        try:
            check_complete(path)
        except (CheckpointError, FileNotFoundError) as e:
            if logger is not None:
                logger.warning(f'auto-resume skips {path}: {e}')
            continue
        return path
    return None
