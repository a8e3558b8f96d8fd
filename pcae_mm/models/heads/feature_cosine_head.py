"""Cosine loss toward per-token standardised teacher features (PCAE, SdAE)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.targets import standardize


@MODELS.register_module()
class FeatureCosineHead(BaseModule):
    """``1 - cos(pred, standardise(target))``, averaged.

    Args:
        cos_dim (int): Axis of the cosine. ``-1`` (default): per token over channels.
            ``1``: over the tokens of each fold, per channel (the official SdAE code's choice,
            kept as an option).
        num_folds (int): With ``cos_dim=1``, tokens form this many folds (SdAE). Defaults to 1.
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self, cos_dim: int = -1, num_folds: int = 1, eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if cos_dim not in (-1, 1):
            raise ValueError(f'cos_dim must be -1 (channels) or 1 (tokens), got {cos_dim}')
        self.cos_dim = cos_dim
        self.num_folds = num_folds
        self.eps = eps

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cosine loss.

        Args:
            pred (Tensor): Student predictions, B x K x C.
            target (Tensor): Teacher tokens at the same ids, B x K x C.

        Returns:
            Tensor: scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'prediction {tuple(pred.shape)} and teacher target '
                             f'{tuple(target.shape)} differ: the decoder out_dims must equal '
                             'the teacher width')
        target = standardize(target.float(), self.eps)  # B x K x C
        pred = pred.float()
        if self.cos_dim == 1:
            B, K, C = pred.shape
            pred = pred.reshape(B * self.num_folds, K // self.num_folds, C)  # BF x K/F x C
            target = target.reshape(B * self.num_folds, K // self.num_folds, C)
        return (1 - F.cosine_similarity(pred, target, dim=self.cos_dim)).mean()
