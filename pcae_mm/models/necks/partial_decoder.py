"""MAE-style decoder that decodes only a chosen subset of the masked tokens."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS
from mmcv.cnn import build_norm_layer
from torch import nn

from ..utils.masking import gather_tokens


@MODELS.register_module()
class PartialDecoder(BaseModule):
    """Lightweight transformer decoder over cls + visible latents + K chosen mask tokens.

    MAE decodes all L positions. This decoder takes the ids of the masked patches to
    reconstruct (all of them for MAE / SdAE, the 18 survivors of the teacher's token reduction
    for PCAE, the furthest-sampled subset for PR-MIM): each gets the shared mask token plus the
    decoder position embedding gathered at its id, so the decoder runs on ``1 + V + K`` tokens.
    Parameter names follow mmpretrain's ``MAEPretrainDecoder``.

    Args:
        num_patches (int): L, patches per image (a square grid). Defaults to 196.
        in_chans (int): Encoder width C. Defaults to 768.
        embed_dim (int): Decoder width D. Defaults to 512.
        depth (int): Decoder blocks. Defaults to 8.
        num_heads (int): Defaults to 16.
        mlp_ratio (float): Defaults to 4.
        out_dims (int): Prediction width P per token: ``patch_size**2 * 3`` for pixels, or the
            teacher width for feature targets. Defaults to 768.
        norm_cfg (dict): Defaults to LN with eps 1e-6.
        drop_path_rate (float | Sequence[float]): Stochastic depth of every decoder block. A
            float is the SAME rate for each block (the PCAE authors' decoder: every block gets
            the encoder's recipe value, 0.25); a sequence gives one rate per block. Defaults to
            0 (MAE and SdAE decoders have none).
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 num_patches: int = 196,
                 in_chans: int = 768,
                 embed_dim: int = 512,
                 depth: int = 8,
                 num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 out_dims: int = 768,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 drop_path_rate: Union[float, Sequence[float]] = 0.,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(drop_path_rate, (int, float)):
            drop_path_rate = [float(drop_path_rate)] * depth
        drop_path_rate = [float(r) for r in drop_path_rate]
        if len(drop_path_rate) != depth or not all(0. <= r < 1. for r in drop_path_rate):
            raise ValueError(f'decoder drop_path_rate must be one rate in [0, 1) or {depth} of '
                             f'them, got {drop_path_rate}')
        self.drop_path_rate = drop_path_rate
        if int(num_patches**.5)**2 != num_patches:
            raise ValueError(f'num_patches must be a square number, got {num_patches}')
        if embed_dim % num_heads:
            raise ValueError(f'decoder embed_dim {embed_dim} is not divisible by num_heads '
                             f'{num_heads}')
        self.num_patches = num_patches
        self.in_chans = in_chans
        self.embed_dims = embed_dim
        self.out_dims = out_dims
        self.decoder_embed = nn.Linear(in_chans, embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            TransformerEncoderLayer(
                embed_dim, num_heads, int(mlp_ratio * embed_dim),
                drop_path_rate=drop_path_rate[i], norm_cfg=norm_cfg)
            for i in range(depth)
        ])
        self.ln1_name, norm = build_norm_layer(norm_cfg, embed_dim, postfix=1)
        self.add_module(self.ln1_name, norm)
        self.decoder_pred = nn.Linear(embed_dim, out_dims, bias=True)

    @property
    def decoder_norm(self) -> nn.Module:
        return getattr(self, self.ln1_name)

    def init_weights(self) -> None:
        """Fixed 2D sin-cos position embedding, normal mask token, then the init_cfg."""
        super().init_weights()
        pos = build_2d_sincos_position_embedding(
            int(self.num_patches**.5), self.decoder_pos_embed.shape[-1], cls_token=True)
        self.decoder_pos_embed.data.copy_(pos.float())
        torch.nn.init.normal_(self.mask_token, std=.02)

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor,
                ids_decode: torch.Tensor) -> torch.Tensor:
        """Predict the tokens at ``ids_decode``.

        Args:
            latent (Tensor): Encoder output, cls first, B x (1 + V) x C.
            ids_keep (Tensor): Absolute ids of the V visible patches, B x V.
            ids_decode (Tensor): Absolute ids of the K masked patches to predict, B x K.

        Returns:
            Tensor: Predictions for ``ids_decode``, in that order, B x K x P.
        """
        return self.predict(self.forward_features(latent, ids_keep, ids_decode))

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        """Prediction head on decoder states: B x K x D -> B x K x P."""
        return self.decoder_pred(hidden)

    def forward_features(self, latent: torch.Tensor, ids_keep: torch.Tensor,
                         ids_decode: torch.Tensor) -> torch.Tensor:
        """Final normalised decoder states of the tokens at ``ids_decode`` (before
        ``decoder_pred``; PR-MIM's progressive head reads them).

        Args: as :meth:`forward`.

        Returns:
            Tensor: B x K x D.
        """
        if latent.shape[-1] != self.in_chans:
            raise ValueError(f'decoder expects encoder width {self.in_chans}, got '
                             f'{latent.shape[-1]}')
        B, K = ids_decode.shape
        x = self.decoder_embed(latent)  # B x (1+V) x D
        pos = self.decoder_pos_embed.expand(B, -1, -1)  # B x (1+L) x D
        pos_visible = gather_tokens(pos, ids_keep + 1)  # B x V x D
        pos_decode = gather_tokens(pos, ids_decode + 1)  # B x K x D
        x = torch.cat([
            x[:, :1] + pos[:, :1],  # cls: B x 1 x D
            x[:, 1:] + pos_visible,  # visible: B x V x D
            self.mask_token.expand(B, K, -1) + pos_decode,  # to predict: B x K x D
        ], dim=1)  # B x (1+V+K) x D
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_norm(x[:, -K:])  # B x K x D
