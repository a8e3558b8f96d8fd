"""Random patch masking shared by every method (MAE's per-sample shuffle)."""
from typing import NamedTuple, Optional

import torch


class MaskInfo(NamedTuple):
    """Result of :func:`random_masking`.

    Attributes:
        ids_keep (Tensor): Absolute ids of the visible patches, B x V.
        ids_masked (Tensor): Absolute ids of the masked patches, B x M (random order).
        mask (Tensor): Binary mask, 1 = masked, in the original patch order, B x L.
    """
    ids_keep: torch.Tensor
    ids_masked: torch.Tensor
    mask: torch.Tensor


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """Number of visible patches MAE keeps: ``int(L * (1 - mask_ratio))``."""
    check_ratio('mask_ratio', mask_ratio)
    return int(num_patches * (1 - mask_ratio))


def check_ratio(name: str, value: float) -> None:
    """Raise a ValueError naming ``name`` unless ``0 < value < 1``."""
    if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ValueError(f'{name} must be a number strictly between 0 and 1, got {value!r}')


def random_masking(batch_size: int,
                   num_patches: int,
                   mask_ratio: float,
                   device: torch.device,
                   generator: Optional[torch.Generator] = None) -> MaskInfo:
    """Sample an independent random mask for every image.

    Args:
        batch_size (int): B.
        num_patches (int): L, patches per image.
        mask_ratio (float): Share of patches to mask, in (0, 1).
        device (torch.device): Device of the returned ids.
        generator (torch.Generator, optional): For reproducible masks.

    Returns:
        MaskInfo: ids_keep B x V, ids_masked B x M, mask B x L.
    """
    len_keep = num_visible(num_patches, mask_ratio)
    if len_keep < 1 or len_keep >= num_patches:
        raise ValueError(f'mask_ratio={mask_ratio} leaves {len_keep} of {num_patches} patches '
                         'visible: need at least one visible and one masked patch')
    noise = torch.rand(batch_size, num_patches, device=device, generator=generator)  # B x L
    ids_shuffle = torch.argsort(noise, dim=1)  # B x L, ascending: small noise is kept
    # each patch's rank in the shuffle (MAE's ids_restore), by one scatter instead of a sort
    ranks = torch.arange(num_patches, device=ids_shuffle.device).expand(batch_size, -1)
    rank = torch.empty_like(ids_shuffle).scatter_(1, ids_shuffle, ranks)  # B x L
    ids_keep = ids_shuffle[:, :len_keep]  # B x V
    ids_masked = ids_shuffle[:, len_keep:]  # B x M
    # a patch is masked when its rank in the shuffle is past the kept ones: 1 = masked, B x L
    mask = (rank >= len_keep).to(noise.dtype)
    return MaskInfo(ids_keep, ids_masked, mask)


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Pick tokens by id along the sequence axis.

    Args:
        x (Tensor): B x L x C (or B x L).
        ids (Tensor): B x K integer ids into L.

    Returns:
        Tensor: B x K x C (or B x K).
    """
    if x.dim() == 2:
        return torch.gather(x, 1, ids)
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
