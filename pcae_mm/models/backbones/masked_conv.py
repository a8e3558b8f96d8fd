"""Masked-convolution building blocks of the ConvMAE-style hybrid encoder (MR-MCMAE)."""
from typing import Optional

import torch
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import nn


class ChannelLastNorm(nn.LayerNorm):
    """LayerNorm over the channels of a B x C x H x W map (LN2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # B x H x W x C
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)  # B x C x H x W


class ConvPatchEmbed(BaseModule):
    """Non-overlapping ``k x k`` stride-``k`` convolution followed by LN2d.

    Because kernel and stride are equal, every output position sees exactly one ``k x k``
    block of its input: patch embeddings never mix patches, so they keep the masking exact.

    Args:
        in_channels (int): Input channels.
        embed_dims (int): Output channels.
        patch_size (int): Kernel size and stride.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 eps: float = 1e-6, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = ChannelLastNorm(embed_dims, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C_in x H x W -> B x C x H/k x W/k."""
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f'feature map {tuple(x.shape[-2:])} is not divisible by the patch '
                             f'embedding stride {self.patch_size}')
        return self.norm(self.projection(x))  # B x C x H/k x W/k


class MaskedConvBlock(BaseModule):
    """ConvMAE convolution block whose spatial mixing only ever reads visible positions.

    ``x = x + conv2(dwconv5x5(visible * conv1(LN(x))))`` then ``x = x + MLP(LN(x))`` (1x1
    convolutions). The 5x5 depth-wise convolution is the only operation that mixes positions and
    its input is multiplied by the visibility map, so the output at a visible position depends
    on visible positions only; everything else is per position. Masked positions still carry
    values, which later blocks multiply out again before mixing.

    Args:
        embed_dims (int): Channels C.
        mlp_ratio (float): Hidden width of the 1x1-conv MLP. Defaults to 4.
        kernel_size (int): Depth-wise kernel. Defaults to 5.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self,
                 embed_dims: int,
                 mlp_ratio: float = 4.,
                 kernel_size: int = 5,
                 drop_path_rate: float = 0.,
                 eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden = int(embed_dims * mlp_ratio)
        self.norm1 = ChannelLastNorm(embed_dims, eps=eps)
        self.conv1 = nn.Conv2d(embed_dims, embed_dims, 1)
        self.attn = nn.Conv2d(embed_dims, embed_dims, kernel_size, padding=kernel_size // 2,
                              groups=embed_dims)
        self.conv2 = nn.Conv2d(embed_dims, embed_dims, 1)
        self.norm2 = ChannelLastNorm(embed_dims, eps=eps)
        self.mlp = nn.Sequential(
            nn.Conv2d(embed_dims, hidden, 1), nn.GELU(), nn.Conv2d(hidden, embed_dims, 1))
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, visible: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Masked convolution block.

        Args:
            x (Tensor): B x C x H x W.
            visible (Tensor, optional): B x 1 x H x W, 1 at visible positions, 0 at masked
                ones. None: plain convolution (fine-tuning, downstream).

        Returns:
            Tensor: B x C x H x W.
        """
        y = self.conv1(self.norm1(x))  # B x C x H x W
        if visible is not None:
            y = y * visible  # masked positions contribute nothing to the spatial mixing
        x = x + self.drop_path(self.conv2(self.attn(y)))  # B x C x H x W
        return x + self.drop_path(self.mlp(self.norm2(x)))  # B x C x H x W
