"""Normalised-pixel MSE on a chosen subset of patches (MAE target, partial)."""
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.masking import gather_tokens
from .feature_cosine_head import standardize


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


@MODELS.register_module()
class PartialPixelHead(BaseModule):
    """MSE between predicted and (optionally normalised) pixels of the predicted patches.

    The algorithm gathers the target patches (:func:`patch_pixels` at the predictions' ids);
    the head normalises them per patch (MAE's norm-pix) and takes the mean squared error.

    Args:
        patch_size (int): Patch side; predictions are ``patch_size**2 * 3`` wide. Defaults
            to 16.
        norm_pix (bool): Standardise each target patch (MAE's norm-pix). Defaults to True.
    """

    def __init__(self, patch_size: int = 16, norm_pix: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.norm_pix = norm_pix

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error.

        Args:
            pred (Tensor): B x K x (p * p * 3).
            target (Tensor): Raw pixels of the same patches, B x K x (p * p * 3).

        Returns:
            Tensor: scalar loss.
        """
        if self.norm_pix:
            target = standardize(target)  # B x K x ppC
        if pred.shape != target.shape or pred.shape[-1] != self.patch_size**2 * 3:
            raise ValueError(f'pixel prediction {tuple(pred.shape)} does not match target '
                             f'{tuple(target.shape)} of {self.patch_size} px patches: decoder '
                             'out_dims must be patch_size**2*3')
        return ((pred.float() - target.float())**2).mean()
