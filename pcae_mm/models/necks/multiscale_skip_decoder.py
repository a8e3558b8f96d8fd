"""Partial decoder with ConvMAE multi-scale skips (MR-MCMAE)."""
from typing import List, Optional, Sequence, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import ModuleList
from mmpretrain.registry import MODELS
from torch import nn

from ..utils.masking import gather_tokens
from .partial_decoder import PartialDecoder


@MODELS.register_module()
class MultiScaleSkipDecoder(PartialDecoder):
    """:class:`PartialDecoder` for the hybrid encoder: adds stride-4/8 skips, has no cls token.

    Each early-stage map (B x C_i x H_i x W_i) is projected to the encoder width by a
    non-overlapping ``k_i x k_i`` stride-``k_i`` convolution (one stride-16 patch per output
    position, so a visible token never receives a masked patch's content), gathered at the
    visible ids and added to the encoder's visible tokens; the sum is layer-normalised and
    decoded like MAE over ``V + K`` tokens (no cls token).

    Args:
        skip_channels (Sequence[int]): Channels of the skip maps. Defaults to (256, 384).
        skip_strides (Sequence[int]): Stride from each skip map to the stride-16 grid.
            Defaults to (4, 2).
        Others as :class:`PartialDecoder`.
    """

    def __init__(self,
                 skip_channels: Sequence[int] = (256, 384),
                 skip_strides: Sequence[int] = (4, 2),
                 num_patches: int = 196,
                 in_chans: int = 768,
                 embed_dim: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 out_dims: int = 768,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            num_patches=num_patches,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            out_dims=out_dims,
            norm_cfg=norm_cfg,
            init_cfg=init_cfg)
        if len(skip_channels) != len(skip_strides):
            raise ValueError(f'skip_channels {skip_channels} and skip_strides {skip_strides} '
                             'differ in length')
        self.skip_projs = ModuleList([
            nn.Conv2d(c, in_chans, s, stride=s) for c, s in zip(skip_channels, skip_strides)
        ])
        self.skip_norm = build_norm_layer(norm_cfg, in_chans)[1]

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor, ids_decode: torch.Tensor,
                skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Predict the tokens at ``ids_decode``.

        Args:
            latent (Tensor): Visible encoder tokens, no cls, B x V x C.
            ids_keep (Tensor): Their absolute patch ids, B x V.
            ids_decode (Tensor): Absolute ids of the K masked patches to predict, B x K.
            skips (Sequence[Tensor]): Early-stage maps, B x C_i x H_i x W_i.

        Returns:
            Tensor: Predictions for ``ids_decode``, in that order, B x K x P.
        """
        if latent.shape[-1] != self.in_chans:
            raise ValueError(f'decoder expects encoder width {self.in_chans}, got '
                             f'{latent.shape[-1]}')
        if len(skips) != len(self.skip_projs):
            raise ValueError(f'decoder expects {len(self.skip_projs)} skip maps, got '
                             f'{len(skips)}')
        B, K = ids_decode.shape
        for proj, skip in zip(self.skip_projs, skips):
            skip = proj(skip).flatten(2).transpose(1, 2)  # B x L x C
            if skip.shape[1] != self.num_patches:
                raise ValueError(f'skip map {tuple(skip.shape)} does not reach the '
                                 f'{self.num_patches}-patch grid: check skip_strides')
            latent = latent + gather_tokens(skip, ids_keep)  # B x V x C
        x = self.decoder_embed(self.skip_norm(latent))  # B x V x D
        pos = self.decoder_pos_embed[:, 1:].expand(B, -1, -1)  # B x L x D (no cls slot)
        x = torch.cat([
            x + gather_tokens(pos, ids_keep),  # visible: B x V x D
            self.mask_token.expand(B, K, -1) + gather_tokens(pos, ids_decode),  # B x K x D
        ], dim=1)  # B x (V+K) x D
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x[:, -K:])  # B x K x D
        return self.decoder_pred(x)  # B x K x P
