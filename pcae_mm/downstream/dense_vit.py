"""A plain ViT for detection and segmentation that loads pcae_mm checkpoints by prefix."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model import ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models import VisionTransformer
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import build_norm_layer, resize_pos_embed, to_2tuple
from mmpretrain.registry import MODELS

from ..utils.pretrained import init_weights_verified, split_pretrained_cfg
from .window_attention import RelPosAttention, window_partition, window_unpartition


class DenseViTLayer(TransformerEncoderLayer):
    """mmpretrain's ViT block (same state-dict keys) with optional window attention and
    decomposed relative positions, run on an h x w token grid.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden width.
        window_size (int): Attend inside ws x ws windows; 0 for global attention.
        rel_pos_size (int, optional): Grid side of the relative-position tables (the window
            size for windowed blocks). None: no relative positions.
        drop_path_rate (float): Stochastic depth, applied per image (after un-partitioning).
        **kwargs: Passed to :class:`TransformerEncoderLayer`.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 window_size: int = 0,
                 rel_pos_size: Optional[int] = None,
                 drop_path_rate: float = 0.,
                 qkv_bias: bool = True,
                 **kwargs) -> None:
        super().__init__(embed_dims, num_heads, feedforward_channels,
                         drop_path_rate=drop_path_rate, qkv_bias=qkv_bias, **kwargs)
        self.window_size = window_size
        self.attn = RelPosAttention(
            embed_dims=embed_dims,
            num_heads=num_heads,
            rel_pos_size=rel_pos_size,
            attn_drop=kwargs.get('attn_drop_rate', 0.),
            proj_drop=kwargs.get('drop_rate', 0.),
            dropout_layer=dict(type='Dropout', drop_prob=0.),
            qkv_bias=qkv_bias)
        self.drop_path = build_dropout(dict(type='DropPath', drop_prob=drop_path_rate))

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """One block.

        Args:
            x (Tensor): B x N x C, N = h * w (patch tokens only when windowed or with relative
                positions; otherwise a leading cls token is allowed).
            hw (tuple): Patch grid (h, w).

        Returns:
            Tensor: B x N x C.
        """
        shortcut = x
        x = self.ln1(x)
        if self.window_size:
            B, N, C = x.shape
            windows, pad_hw = window_partition(x.view(B, hw[0], hw[1], C), self.window_size)
            windows = self.attn(windows, (self.window_size, self.window_size))  # BnW x ws2 x C
            x = window_unpartition(windows, self.window_size, pad_hw, hw).view(B, N, C)
        else:
            x = self.attn(x, hw)  # B x N x C
        x = shortcut + self.drop_path(x)
        return self.ffn(self.ln2(x), identity=x)


@MODELS.register_module()
class DenseViT(BaseBackbone):
    """Plain ViT backbone for mmdet / mmseg, in mmpretrain's state-dict layout.

    Loads a pcae_mm pre-training checkpoint with
    ``init_cfg=dict(type='Pretrained', checkpoint=CKPT, prefix='backbone.')`` through
    :func:`pcae_mm.utils.pretrained.load_pretrained` (logs ``loaded N/M backbone tensors``,
    raises when fewer than ``min_share`` match). The position embedding keeps the pre-training
    grid (``img_size``) and is interpolated to every input's grid in ``forward``, so any input
    size works; inputs not divisible by the patch size are padded at the bottom-right.

    ViTDet options (`arXiv:2203.16527 <https://arxiv.org/abs/2203.16527>`_): window attention
    in all blocks but ``global_attn_indices``, and zero-initialised decomposed relative
    positions (``use_rel_pos``); both need ``with_cls_token=False``. mmseg's MAE style
    (cls token kept through the blocks, features from ``out_indices`` [3, 5, 7, 11]) is
    ``with_cls_token=True``.

    Args:
        arch (str | dict): ViT size, as :class:`mmpretrain.models.VisionTransformer`.
        img_size (int): Pre-training image size: the stored position-embedding grid.
        patch_size (int): Defaults to 16.
        in_channels (int): Defaults to 3.
        out_indices (Sequence[int] | int): Blocks whose outputs are returned as feature maps.
        drop_rate (float): Dropout after the position embedding and in the blocks.
        drop_path_rate (float): Stochastic depth (linearly increasing). Defaults to 0.1.
        qkv_bias (bool): Defaults to True.
        norm_cfg (dict): Defaults to LN, eps 1e-6.
        final_norm (bool): LayerNorm (``ln1``) after the last block. Defaults to False.
        with_cls_token (bool): Run a cls token through the blocks (dropped from outputs).
        window_size (int): Window side for windowed blocks; 0 disables windows.
        global_attn_indices (Sequence[int]): Blocks keeping global attention when windowed.
        use_rel_pos (bool): Decomposed relative positions in every block.
        rel_pos_grid (int, optional): Grid side the global blocks' relative-position tables are
            sized for (ViTDet: 1024 / 16 = 64); defaults to the ``img_size`` grid.
        interpolate_mode (str): Position-embedding interpolation. Defaults to 'bicubic'.
        init_cfg (dict | list, optional): ``Pretrained`` entries are loaded verified; extra keys
            ``min_share`` and ``map_location``.
    """

    arch_zoo = VisionTransformer.arch_zoo
    num_extra_tokens = 1

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_indices: Union[Sequence[int], int] = -1,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 final_norm: bool = False,
                 with_cls_token: bool = False,
                 window_size: int = 0,
                 global_attn_indices: Sequence[int] = (),
                 use_rel_pos: bool = False,
                 rel_pos_grid: Optional[int] = None,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'unknown ViT arch {arch!r}; choose one of '
                                 f'{sorted(self.arch_zoo)} or give a dict')
            arch = self.arch_zoo[arch.lower()]
        missing = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'} - set(arch)
        if missing:
            raise ValueError(f'custom arch misses {sorted(missing)}')
        if with_cls_token and (window_size or use_rel_pos):
            raise ValueError('window attention and relative positions work on the patch grid '
                             'only: set with_cls_token=False (ViTDet drops the cls token)')
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0, got {window_size}')
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.img_size = to_2tuple(img_size)
        self.patch_size = patch_size
        self.with_cls_token = with_cls_token
        self.interpolate_mode = interpolate_mode
        self.final_norm = final_norm

        self.patch_embed = PatchEmbed(
            in_channels=in_channels,
            input_size=img_size,
            embed_dims=self.embed_dims,
            conv_type='Conv2d',
            kernel_size=patch_size,
            stride=patch_size)
        self.patch_resolution = self.patch_embed.init_out_size
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        if with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        # Pre-training layout: cls slot + grid, interpolated per input in forward.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, self.embed_dims))
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        for i, index in enumerate(out_indices):
            out_indices[i] = index + self.num_layers if index < 0 else index
            if not 0 <= out_indices[i] < self.num_layers:
                raise ValueError(f'out_indices {index} out of range for {self.num_layers} '
                                 'blocks')
        self.out_indices = out_indices
        bad = [i for i in global_attn_indices if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f'global_attn_indices {bad} out of range')

        grid = rel_pos_grid or self.patch_resolution[0]
        dpr = np.linspace(0, drop_path_rate, self.num_layers)
        self.layers = ModuleList()
        for i in range(self.num_layers):
            windowed = bool(window_size) and i not in global_attn_indices
            rel_size = (window_size if windowed else grid) if use_rel_pos else None
            self.layers.append(
                DenseViTLayer(
                    embed_dims=self.embed_dims,
                    num_heads=arch['num_heads'],
                    feedforward_channels=arch['feedforward_channels'],
                    window_size=window_size if windowed else 0,
                    rel_pos_size=rel_size,
                    drop_rate=drop_rate,
                    drop_path_rate=float(dpr[i]),
                    qkv_bias=qkv_bias,
                    norm_cfg=norm_cfg))
        if final_norm:
            self.ln1 = build_norm_layer(norm_cfg, self.embed_dims)

    def init_weights(self) -> None:
        """Truncated-normal position embedding / cls token, then a verified checkpoint load."""
        pretrained, _ = split_pretrained_cfg(self.init_cfg)
        if pretrained:
            init_weights_verified(self, self.init_weights)
            return
        super().init_weights()
        trunc_normal_(self.pos_embed, std=0.02)
        if self.with_cls_token:
            trunc_normal_(self.cls_token, std=0.02)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer depth for layer-wise lr decay, as :class:`VisionTransformer`:
        embeddings 0, block i -> i + 1, anything else num_layers + 1 (of num_layers + 2)."""
        return VisionTransformer.get_layer_depth(self, param_name, prefix)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the ``out_indices`` blocks.

        Args:
            x (Tensor): Images, B x 3 x H x W (any size).

        Returns:
            tuple[Tensor]: each B x C x ceil(H / p) x ceil(W / p).
        """
        if x.dim() != 4:
            raise ValueError(f'expected images B x C x H x W, got shape {tuple(x.shape)}')
        B = x.shape[0]
        x, hw = self.patch_embed(x)  # B x hw x C
        pos = resize_pos_embed(self.pos_embed, self.patch_resolution, hw,
                               mode=self.interpolate_mode, num_extra_tokens=1)  # 1 x (1+hw) x C
        x = x + pos[:, 1:]
        extra = 0
        if self.with_cls_token:
            cls = (self.cls_token + pos[:, :1]).expand(B, -1, -1)  # B x 1 x C
            x = torch.cat([cls, x], dim=1)  # B x (1+hw) x C
            extra = 1
        x = self.drop_after_pos(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, hw)
            if i == self.num_layers - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                feat = x[:, extra:]  # B x hw x C
                outs.append(feat.transpose(1, 2).reshape(B, self.embed_dims, *hw).contiguous())
        return tuple(outs)
