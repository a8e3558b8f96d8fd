"""Reconstruction targets shared by the heads, the algorithms and the visualiser."""
import torch

from .masking import gather_tokens


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """B x 3 x H x W -> B x L x (p * p * 3), patches in raster order (MAE layout)."""
    B, C, H, W = imgs.shape
    p = patch_size
    x = imgs.reshape(B, C, H // p, p, W // p, p)  # B x C x h x p x w x p
    x = torch.einsum('nchpwq->nhwpqc', x)  # B x h x w x p x p x C
    return x.reshape(B, (H // p) * (W // p), p * p * C)  # B x L x ppC


def patch_pixels(images: torch.Tensor, ids: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Raw pixels of the patches at ``ids``: B x 3 x H x W, B x K -> B x K x (p * p * 3)."""
    return gather_tokens(patchify(images, patch_size), ids)  # B x K x ppC


def standardize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-token standardisation ``(x - mean) / sqrt(var + eps)`` over channels (the last axis):
    MAE's norm-pix for pixel targets, PCAE's / SdAE's normalisation of teacher features."""
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True)
    return (x - mean) / (var + eps)**.5
