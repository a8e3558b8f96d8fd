"""Verified loading of a pre-trained backbone: every load says what it loaded.

mmseg's ``MAE`` and mmdet's ViTDet backbones load non-strictly and ignore ``prefix``, so a
checkpoint in the wrong layout loads NOTHING without a word; mmengine's ``PretrainedInit`` only
logs a warning for missing keys. pcae_mm backbones route ``init_cfg=dict(type='Pretrained', ...)``
through :func:`load_pretrained`, which

* raises ``FileNotFoundError`` for a missing checkpoint and ``ValueError`` for an empty path;
* raises ``KeyError`` when no tensor of the checkpoint starts with ``prefix`` (naming the
  prefixes that do exist);
* resizes ``pos_embed`` to the model's grid (bicubic, cls slot kept) and raises on any other
  shape mismatch (a different architecture);
* logs ``loaded N/M backbone tensors`` with the missing and unused names, and raises
  ``RuntimeError`` when fewer than ``min_share`` of the model's tensors were found.

Extra keys accepted in a ``Pretrained`` init_cfg: ``min_share`` (float, default 0.8) and
``map_location`` (default ``'cpu'``).
"""
import math
import os.path as osp
from collections import Counter
from typing import Callable, Dict, List, NamedTuple, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

DEFAULT_MIN_SHARE = 0.8
INIT_CFG_KEYS = {'type', 'checkpoint', 'prefix', 'min_share', 'map_location'}


class LoadReport(NamedTuple):
    """What :func:`load_pretrained` did.

    Attributes:
        loaded (list[str]): Model tensors filled from the checkpoint.
        total (int): Tensors in the model's state dict (parameters and persistent buffers).
        missing (list[str]): Model tensors not found in the checkpoint (keep their init).
        unused (list[str]): Checkpoint tensors under ``prefix`` the model has no place for.
        resized (list[str]): Tensors interpolated to the model's shape (``pos_embed``).
    """
    loaded: List[str]
    total: int
    missing: List[str]
    unused: List[str]
    resized: List[str]

    @property
    def share(self) -> float:
        return len(self.loaded) / max(self.total, 1)


def is_pretrained_cfg(cfg) -> bool:
    """Whether an init_cfg dict is mmengine's ``Pretrained`` initialiser."""
    return isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'


def split_pretrained_cfg(init_cfg: Union[dict, List[dict], None]):
    """Split an init_cfg into (``Pretrained`` cfgs, the other cfgs or None)."""
    cfgs = [] if init_cfg is None else (
        [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg))
    pretrained = [c for c in cfgs if is_pretrained_cfg(c)]
    others = [c for c in cfgs if not is_pretrained_cfg(c)]
    return pretrained, (others or None)


def read_state_dict(checkpoint: str, map_location: str = 'cpu') -> Dict[str, torch.Tensor]:
    """Read a checkpoint file (or URL) and return its tensors.

    Accepts mmengine checkpoints (``state_dict``), facebookresearch/timm files (``model``) and
    bare state dicts.

    Raises:
        ValueError: ``checkpoint`` is empty.
        FileNotFoundError: a local path that does not exist.
    """
    if not checkpoint:
        raise ValueError(
            'the Pretrained init_cfg has an empty checkpoint path: set '
            'model.backbone.init_cfg.checkpoint to a pcae_mm pre-training checkpoint, e.g. '
            '--cfg-options model.backbone.init_cfg.checkpoint=work_dirs/.../epoch_300.pth')
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'pre-trained checkpoint {checkpoint!r} does not exist')
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location=map_location)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or not any(torch.is_tensor(v) for v in ckpt.values()):
        raise ValueError(f'{checkpoint!r} holds no state dict (no tensors found)')
    return {k: v for k, v in ckpt.items() if torch.is_tensor(v)}


def strip_prefix(state: Dict[str, torch.Tensor], prefix: str,
                 source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Keep the tensors under ``prefix`` with the prefix removed.

    Raises:
        KeyError: no key starts with ``prefix``; the message lists the prefixes present.
    """
    if not prefix:
        return dict(state)
    if not prefix.endswith('.'):
        prefix += '.'
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not out:
        heads = Counter(k.split('.')[0] + '.' for k in state)
        raise KeyError(
            f'no tensor in {source} starts with prefix {prefix!r}; its {len(state)} tensors '
            f'start with {dict(heads.most_common(8))}. A pcae_mm pre-training checkpoint stores '
            "the encoder under 'backbone.'; for a bare backbone state dict use prefix=''; "
            'convert timm / facebookresearch-MAE / mmseg-MAE files with '
            'tools/model_converters/')
    return out


def resize_pos_embed_to(pos_embed: torch.Tensor, shape: torch.Size,
                        mode: str = 'bicubic') -> torch.Tensor:
    """Interpolate a ``1 x (E + h*w) x C`` position embedding to ``shape``.

    The number of extra (cls) tokens E is 1 when ``N - 1`` is a square, else 0; it is the same
    for source and target, and extra tokens are kept or added as zeros when only one side has
    them.

    Args:
        pos_embed (Tensor): 1 x N x C.
        shape (torch.Size): target 1 x N' x C.

    Returns:
        Tensor: 1 x N' x C.
    """
    def split(n: int):
        for extra in (1, 0):
            side = math.isqrt(n - extra)
            if side * side == n - extra:
                return extra, side
        raise ValueError(f'position embedding with {n} tokens is not a square grid (+ cls)')

    src_extra, src_side = split(pos_embed.shape[1])
    dst_extra, dst_side = split(shape[1])
    C = pos_embed.shape[-1]
    grid = pos_embed[:, src_extra:].reshape(1, src_side, src_side, C).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid.float(), size=(dst_side, dst_side), mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, dst_side * dst_side, C).to(pos_embed.dtype)
    extra = pos_embed[:, :src_extra][:, :dst_extra]
    if extra.shape[1] < dst_extra:
        extra = pos_embed.new_zeros(1, dst_extra, C)
    return torch.cat([extra, grid], dim=1)  # 1 x N' x C


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: str = 'backbone.',
                    min_share: float = DEFAULT_MIN_SHARE,
                    map_location: str = 'cpu',
                    state_dict: Optional[Dict[str, torch.Tensor]] = None,
                    logger: Optional[MMLogger] = None) -> LoadReport:
    """Load ``module`` from the tensors under ``prefix`` of ``checkpoint``, and verify it.

    Args:
        module (nn.Module): The backbone.
        checkpoint (str): Path or URL (used for reading unless ``state_dict`` is given, and in
            messages).
        prefix (str): Key prefix of the backbone inside the checkpoint. Defaults to
            ``'backbone.'`` (pcae_mm / mmpretrain layout).
        min_share (float): Raise when fewer than this share of the module's tensors were loaded.
            Defaults to 0.8.
        map_location (str): Defaults to ``'cpu'``.
        state_dict (dict, optional): Already-read checkpoint tensors.
        logger (MMLogger, optional): Defaults to the current logger.

    Returns:
        LoadReport

    Raises:
        ValueError: empty path, bad ``min_share``, or a tensor whose shape cannot be adapted.
        FileNotFoundError: the checkpoint file does not exist.
        KeyError: no tensor under ``prefix``.
        RuntimeError: no tensor, or fewer than ``min_share`` of them, loaded.
    """
    if not 0 <= min_share <= 1:
        raise ValueError(f'min_share must be in [0, 1], got {min_share}')
    logger = logger or MMLogger.get_current_instance()
    name = type(module).__name__
    if state_dict is None:
        state_dict = read_state_dict(checkpoint, map_location)
    source = strip_prefix(state_dict, prefix, repr(checkpoint))
    target = module.state_dict()
    loadable, resized, mismatched = {}, [], []
    for key, value in source.items():
        if key not in target:
            continue
        want = target[key].shape
        if value.shape != want and key.endswith('pos_embed') and value.dim() == 3 \
                and value.shape[-1] == want[-1]:
            value = resize_pos_embed_to(value, want)
            resized.append(key)
        if value.shape != want:
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs model {tuple(want)}')
            continue
        loadable[key] = value
    if mismatched:
        raise ValueError(
            f'{name}: {len(mismatched)} tensors of {checkpoint!r} (prefix {prefix!r}) do not fit '
            'the model (different architecture? check arch / patch_size / embed_dims): '
            + '; '.join(mismatched[:8]))
    module.load_state_dict(loadable, strict=False)
    report = LoadReport(
        loaded=sorted(loadable),
        total=len(target),
        missing=sorted(set(target) - set(loadable)),
        unused=sorted(set(source) - set(target)),
        resized=resized)
    msg = (f'{name}: loaded {len(report.loaded)}/{report.total} backbone tensors from '
           f'{checkpoint!r} (prefix {prefix!r})')
    if resized:
        msg += f'; resized {resized}'
    if report.missing:
        msg += f'; not in checkpoint (kept initialised): {report.missing}'
    if report.unused:
        msg += f'; unused checkpoint tensors: {report.unused}'
    logger.info(msg)
    if not report.loaded or report.share < min_share:
        raise RuntimeError(
            f'{msg}. Only {report.share:.1%} of the model was loaded (min_share={min_share}): '
            'the checkpoint layout does not match this backbone. Check `prefix`, the arch, or '
            'convert the checkpoint with tools/model_converters/.')
    return report


def init_weights_verified(module: nn.Module, init_weights: Callable[[], None]) -> List[LoadReport]:
    """Run ``init_weights`` without the ``Pretrained`` init_cfg, then load it verified.

    The module's other init_cfgs (and its children's ``init_weights``) run first, as in
    mmengine, so nothing is re-initialised after the checkpoint was loaded.

    Args:
        module (nn.Module): A ``BaseModule`` whose ``init_cfg`` holds a ``Pretrained`` entry.
        init_weights (callable): The from-scratch initialisation (called with the Pretrained
            entries removed from ``module.init_cfg``).

    Returns:
        list[LoadReport]: one per Pretrained entry.
    """
    original = module.init_cfg
    pretrained, others = split_pretrained_cfg(original)
    for cfg in pretrained:
        unknown = set(cfg) - INIT_CFG_KEYS
        if unknown:
            raise ValueError(f'unknown keys {sorted(unknown)} in the Pretrained init_cfg of '
                             f'{type(module).__name__}; allowed: {sorted(INIT_CFG_KEYS)}')
    module.init_cfg = others
    try:
        init_weights()
    finally:
        module.init_cfg = original
    reports = []
    for cfg in pretrained:
        cfg = {k: v for k, v in cfg.items() if k != 'type'}
        reports.append(load_pretrained(module, **cfg))
    module.pretrained_report = reports[-1] if reports else None
    return reports
