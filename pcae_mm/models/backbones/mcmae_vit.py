"""ConvMAE-style hybrid encoder: masked convolutions at strides 4 and 8, ViT at stride 16."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule, ModuleList
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import build_2d_sincos_position_embedding, resize_pos_embed
from mmpretrain.registry import MODELS
from torch import nn

from ...utils.pretrained import init_weights_verified
from ..utils.masking import check_ratio, gather_tokens, num_visible, random_masking
from .masked_conv import ConvPatchEmbed, MaskedConvBlock


@MODELS.register_module()
class MCMAEViT(BaseModule):
    """Hybrid convolution-transformer encoder of MR-MCMAE (ConvMAE layout).

    ``4x4`` patch embedding -> masked-convolution blocks (stride 4) -> ``2x2`` embedding ->
    masked-convolution blocks (stride 8) -> ``2x2`` embedding -> transformer blocks on the
    visible stride-16 tokens. The mask is sampled on the stride-16 grid (MAE masking, 14 x 14
    for 224 px) and upsampled (nearest) to the convolution stages, where it is multiplied in
    before every spatial convolution, so no masked pixel can reach a visible output. The plain
    forward (``mask=False``, or ``masking=False`` for downstream configs) runs everything on
    the full image and returns multi-scale feature maps.

    Paper: `MR-MAE <https://arxiv.org/abs/2303.05475>`_; encoder after
    `ConvMAE <https://arxiv.org/abs/2205.03892>`_.

    Args:
        arch (str | dict): ``'base'`` (``embed_dims=[256, 384, 768]``, ``depths=[2, 2, 11]``,
            ``num_heads=12``) or a dict with ``embed_dims``, ``depths``, ``num_heads`` and
            optional ``mlp_ratio``.
        img_size (int): Input size, divisible by 16. Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        mask_ratio (float): Share of masked stride-16 patches. Defaults to 0.75.
        masking (bool): What ``forward(x)`` does without a ``mask`` argument: True for
            pre-training, False for classifiers / detectors / segmentors. Defaults to True.
        out_indices (Sequence[int]): Stages (0, 1, 2) returned by the plain forward.
        out_type (str): ``'featmap'`` (B x C_i x H_i x W_i per stage) or ``'avg_featmap'``
            (B x C, normalised mean of the stride-16 tokens, for classification).
        drop_path_rate (float): Stochastic depth, linear over all blocks. Defaults to 0.
        norm_cfg (dict): Transformer normalisation. Defaults to LN, eps 1e-6.
        init_cfg (dict | list, optional): Initialisation config.
    """

    arch_zoo = {
        'base': dict(embed_dims=[256, 384, 768], depths=[2, 2, 11], num_heads=12, mlp_ratio=4.),
        'b': dict(embed_dims=[256, 384, 768], depths=[2, 2, 11], num_heads=12, mlp_ratio=4.),
    }
    patch_sizes = (4, 2, 2)
    OUT_TYPES = ('featmap', 'avg_featmap')

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 224,
                 in_channels: int = 3,
                 mask_ratio: float = 0.75,
                 masking: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2),
                 out_type: str = 'featmap',
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'unknown MCMAE arch {arch!r}; choose one of '
                                 f'{sorted(self.arch_zoo)} or give a dict')
            arch = self.arch_zoo[arch.lower()]
        missing = {'embed_dims', 'depths', 'num_heads'} - set(arch)
        if missing:
            raise ValueError(f'MCMAE arch dict lacks {sorted(missing)}')
        if len(arch['embed_dims']) != 3 or len(arch['depths']) != 3:
            raise ValueError('MCMAE arch needs three stages: embed_dims and depths of length 3')
        if img_size % 16:
            raise ValueError(f'MCMAE image size must be divisible by 16, got {img_size}')
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'out_type must be one of {self.OUT_TYPES}, got {out_type!r}')
        if any(i not in (0, 1, 2) for i in out_indices):
            raise ValueError(f'out_indices are stage ids in (0, 1, 2), got {out_indices}')
        check_ratio('mask_ratio', mask_ratio)
        dims, depths = list(arch['embed_dims']), list(arch['depths'])
        mlp_ratio = arch.get('mlp_ratio', 4.)
        self.stage_dims = dims
        self.depths = depths
        self.embed_dims = dims[-1]
        self.num_layers = depths[-1]
        self.img_size = img_size
        self.patch_size = 16
        self.patch_resolution = (img_size // 16, img_size // 16)
        self.num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.mask_ratio = mask_ratio
        self.masking = masking
        self.out_indices = tuple(out_indices)
        self.out_type = out_type
        if num_visible(self.num_patches, mask_ratio) < 1:
            raise ValueError(f'mask_ratio={mask_ratio} leaves no visible patch out of '
                             f'{self.num_patches}')

        dpr = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.patch_embed1 = ConvPatchEmbed(in_channels, dims[0], self.patch_sizes[0])
        self.blocks1 = ModuleList([
            MaskedConvBlock(dims[0], mlp_ratio, drop_path_rate=dpr[i]) for i in range(depths[0])
        ])
        self.patch_embed2 = ConvPatchEmbed(dims[0], dims[1], self.patch_sizes[1])
        self.blocks2 = ModuleList([
            MaskedConvBlock(dims[1], mlp_ratio, drop_path_rate=dpr[depths[0] + i])
            for i in range(depths[1])
        ])
        self.patch_embed3 = ConvPatchEmbed(dims[1], dims[2], self.patch_sizes[2])
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches, dims[2]), requires_grad=False)  # fixed sin-cos
        self.layers = ModuleList([
            TransformerEncoderLayer(
                dims[2], arch['num_heads'], int(dims[2] * mlp_ratio),
                drop_path_rate=dpr[depths[0] + depths[1] + i], norm_cfg=norm_cfg)
            for i in range(depths[2])
        ])
        self.ln1 = build_norm_layer(norm_cfg, dims[2])[1]
        if out_type == 'avg_featmap':
            self.ln2 = build_norm_layer(norm_cfg, dims[2])[1]

    @property
    def num_masked(self) -> int:
        """Masked stride-16 patches per image, M = L - int(L * (1 - mask_ratio))."""
        return self.num_patches - num_visible(self.num_patches, self.mask_ratio)

    def init_weights(self) -> None:
        """Sin-cos position embedding and Xavier patch embeddings; a ``Pretrained`` init_cfg is
        loaded afterwards and verified (:func:`pcae_mm.utils.pretrained.init_weights_verified`:
        logged, raises when too few tensors match), nothing is re-initialised after it."""
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        if any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in init_cfgs):
            init_weights_verified(self, self.init_weights)
            return
        super().init_weights()
        pos = build_2d_sincos_position_embedding(
            self.patch_resolution[0], self.embed_dims, cls_token=False)  # 1 x L x C
        self.pos_embed.data.copy_(pos.float())
        for embed in (self.patch_embed1, self.patch_embed2, self.patch_embed3):
            w = embed.projection.weight.data
            nn.init.xavier_uniform_(w.view([w.shape[0], -1]))

    # ------------------------------------------------------------------ helpers
    def visibility_maps(self, mask: torch.Tensor) -> List[torch.Tensor]:
        """Upsample the stride-16 mask to the two convolution stages.

        Args:
            mask (Tensor): B x L, 1 = masked (MAE convention).

        Returns:
            list[Tensor]: visibility (1 = visible) at stride 4 (B x 1 x 4h x 4w) and stride 8
            (B x 1 x 2h x 2w).
        """
        h, w = self.patch_resolution
        visible = (1 - mask).reshape(-1, 1, h, w)  # B x 1 x h x w
        return [
            F.interpolate(visible, scale_factor=4, mode='nearest'),  # B x 1 x 4h x 4w
            F.interpolate(visible, scale_factor=2, mode='nearest'),  # B x 1 x 2h x 2w
        ]

    def forward_convs(self, x: torch.Tensor, visible: Optional[List[torch.Tensor]] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two convolution stages and the stride-16 embedding.

        Args:
            x (Tensor): Images, B x 3 x H x W.
            visible (list[Tensor], optional): Visibility maps from :meth:`visibility_maps`.

        Returns:
            tuple: stage-1 map B x C1 x H/4 x W/4, stage-2 map B x C2 x H/8 x W/8 and the
            stride-16 tokens with position embedding B x L x C (interpolated for other input
            sizes in the plain forward, e.g. 1024 px detection).
        """
        if x.dim() != 4 or x.shape[-2] % 16 or x.shape[-1] % 16:
            raise ValueError(f'expected images B x C x H x W with H, W divisible by 16, got '
                             f'{tuple(x.shape)}')
        v1, v2 = visible if visible is not None else (None, None)
        x1 = self.patch_embed1(x)  # B x C1 x H/4 x W/4
        for blk in self.blocks1:
            x1 = blk(x1, v1)
        x2 = self.patch_embed2(x1)  # B x C2 x H/8 x W/8
        for blk in self.blocks2:
            x2 = blk(x2, v2)
        x3 = self.patch_embed3(x2)  # B x C x H/16 x W/16
        tokens = x3.flatten(2).transpose(1, 2)  # B x L x C
        if visible is not None and tokens.shape[1] != self.num_patches:
            raise ValueError(f'masked pre-training expects {self.img_size} px images '
                             f'({self.num_patches} patches), got {tuple(x.shape[-2:])}')
        pos = resize_pos_embed(self.pos_embed, self.patch_resolution, tuple(x3.shape[-2:]),
                               mode='bicubic', num_extra_tokens=0)  # 1 x L x C
        return x1, x2, tokens + pos  # B x L x C

    # ------------------------------------------------------------------ forwards
    def forward(self, x: torch.Tensor, mask: Optional[bool] = None):
        """Masked encoding (pre-training) or the plain multi-scale forward.

        Args:
            x (Tensor): Images, B x 3 x H x W.
            mask (bool, optional): True for masked pre-training, False for the plain forward.
                None: the ``masking`` set at construction.

        Returns:
            With masking: ``(latent, mask_info, skips)``: visible stride-16 tokens after the
            final norm B x V x C (no cls token), a ``MaskInfo``, and the full stage-1 / stage-2
            maps ``[B x C1 x H/4 x W/4, B x C2 x H/8 x W/8]`` (computed with masked
            convolutions; only their visible positions may be used). Without: a tuple of the
            ``out_indices`` stage maps, or ``(B x C, )`` for ``out_type='avg_featmap'``.
        """
        if mask is None:
            mask = self.masking
        if not mask:
            return self.forward_plain(x)
        info = random_masking(x.shape[0], self.num_patches, self.mask_ratio, x.device)
        x1, x2, tokens = self.forward_convs(x, self.visibility_maps(info.mask.to(x.dtype)))
        latent = gather_tokens(tokens, info.ids_keep)  # B x V x C
        for layer in self.layers:
            latent = layer(latent)  # B x V x C
        return self.ln1(latent), info, [x1, x2]

    def forward_plain(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Full-image forward for fine-tuning and dense prediction.

        Args:
            x (Tensor): B x 3 x H x W.

        Returns:
            tuple[Tensor]: the ``out_indices`` stage maps (B x C_i x H_i x W_i), or
            ``(B x C, )`` for ``out_type='avg_featmap'``.
        """
        x1, x2, tokens = self.forward_convs(x)  # tokens: B x L x C
        for layer in self.layers:
            tokens = layer(tokens)
        tokens = self.ln1(tokens)  # B x L x C
        if self.out_type == 'avg_featmap':
            return (self.ln2(tokens.mean(dim=1)), )  # B x C
        h, w = x.shape[-2] // 16, x.shape[-1] // 16
        x3 = tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)  # B x C x h x w
        stages = (x1, x2, x3)
        return tuple(stages[i] for i in self.out_indices)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer-wise depth for layer-decay optimizers (mmpretrain's convention).

        Embeddings of stage 1 get depth 0, every block (convolutional or transformer) one
        more than the previous, a stage's patch embedding the depth of its first block, and
        everything after the last block (final norms) ``num_layers - 1``.

        Returns:
            tuple[int, int]: the depth and the number of depths.
        """
        d1, d2, d3 = self.depths
        num_layers = d1 + d2 + d3 + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        parts = name.split('.')
        if parts[0] in ('patch_embed1', 'pos_embed'):
            depth = 0
        elif parts[0] == 'blocks1':
            depth = int(parts[1]) + 1
        elif parts[0] == 'patch_embed2':
            depth = d1 + 1
        elif parts[0] == 'blocks2':
            depth = d1 + int(parts[1]) + 1
        elif parts[0] == 'patch_embed3':
            depth = d1 + d2 + 1
        elif parts[0] == 'layers':
            depth = d1 + d2 + int(parts[1]) + 1
        else:
            depth = num_layers - 1
        return depth, num_layers

