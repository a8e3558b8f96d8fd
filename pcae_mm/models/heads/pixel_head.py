"""Normalised-pixel MSE on a chosen subset of patches (MAE target, partial)."""
from typing import Optional

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.targets import standardize


@MODELS.register_module()
class PartialPixelHead(BaseModule):
    """MSE between predicted and (optionally normalised) pixels of the predicted patches.

    The algorithm gathers the target patches
    (:func:`~pcae_mm.models.utils.targets.patch_pixels` at the predictions' ids);
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
