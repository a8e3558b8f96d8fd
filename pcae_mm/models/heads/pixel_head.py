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


@MODELS.register_module()
class PartialPixelHead(BaseModule):
    """MSE between predicted and (optionally normalised) pixels of the patches at ``ids``.

    Args:
        patch_size (int): Defaults to 16.
        norm_pix (bool): Standardise each target patch (MAE's norm-pix). Defaults to True.
    """

    needs_teacher_tokens = False

    def __init__(self, patch_size: int = 16, norm_pix: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.norm_pix = norm_pix

    def target(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Pixel targets B x K x (p * p * 3) of the patches at ids (B x K)."""
        target = gather_tokens(patchify(images, self.patch_size), ids)  # B x K x ppC
        return standardize(target) if self.norm_pix else target

    def loss(self, pred: torch.Tensor, images: torch.Tensor, ids: torch.Tensor,
             **kwargs) -> torch.Tensor:
        """Mean squared error.

        Args:
            pred (Tensor): B x K x (p * p * 3).
            images (Tensor): B x 3 x H x W.
            ids (Tensor): B x K patch ids of the predictions.

        Returns:
            Tensor: scalar loss.
        """
        target = self.target(images, ids)  # B x K x ppC
        if pred.shape != target.shape:
            raise ValueError(f'pixel prediction {tuple(pred.shape)} does not match target '
                             f'{tuple(target.shape)}: decoder out_dims must be patch_size**2*3')
        return ((pred.float() - target.float())**2).mean()
