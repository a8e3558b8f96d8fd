"""Linear mimic head: student visible tokens -> one frozen teacher's features (MR-MAE)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn

LOSSES = ('smooth_l1', 'mse')


@MODELS.register_module()
class MimicHead(BaseModule):
    """One linear projection and a regression loss toward one teacher's targets.

    Args:
        in_channels (int): Student width C.
        out_channels (int): Teacher width C_t.
        loss (str): ``'smooth_l1'`` (default) or ``'mse'``.
        beta (float): Smooth-L1 threshold. Defaults to 1.0.
        loss_weight (float): The teacher's weight ``w_t`` in the total loss. Defaults to 1.0.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss: str = 'smooth_l1',
                 beta: float = 1.0,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if loss not in LOSSES:
            raise ValueError(f'mimic loss must be one of {LOSSES}, got {loss!r}')
        if loss_weight < 0:
            raise ValueError(f'mimic loss_weight must be >= 0, got {loss_weight}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.loss_type = loss
        self.beta = beta
        self.loss_weight = loss_weight
        self.proj = nn.Linear(in_channels, out_channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """B x V x C -> B x V x C_t."""
        return self.proj(tokens)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted regression loss.

        Args:
            pred (Tensor): This head's projection of the student's visible tokens
                (``head(tokens)``), B x V x C_t.
            target (Tensor): Teacher targets at the same ids, B x V x C_t.

        Returns:
            Tensor: scalar ``loss_weight * loss``.
        """
        pred = pred.float()  # B x V x C_t
        if pred.shape != target.shape:
            raise ValueError(f'mimic prediction {tuple(pred.shape)} and teacher target '
                             f'{tuple(target.shape)} differ')
        if self.loss_type == 'mse':
            loss = F.mse_loss(pred, target.float())
        else:
            loss = F.smooth_l1_loss(pred, target.float(), beta=self.beta)
        return self.loss_weight * loss
