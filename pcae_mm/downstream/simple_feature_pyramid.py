"""ViTDet's simple feature pyramid: a multi-scale neck from one plain-ViT feature map."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.utils import build_norm_layer
from mmpretrain.registry import MODELS


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Build stride-4/8/16/32 maps from the last stride-16 ViT map, then stride-64 by pooling.

    `Exploring Plain Vision Transformer Backbones for Object Detection
    <https://arxiv.org/abs/2203.16527>`_: scale 4 = two 2x2 transposed convs (LN2d + GELU
    between), 2 = one transposed conv, 1 = identity, 0.5 = 2x2 max-pool; each level then gets a
    1x1 conv + LN2d and a 3x3 conv + LN2d. Extra levels (``num_outs`` > number of scales) are
    stride-2 subsamplings of the last one (ViTDet's ``LastLevelMaxPool``).

    Args:
        in_channels (int): Width of the backbone map (768 for ViT-B).
        out_channels (int): Width of every pyramid level. Defaults to 256.
        scale_factors (Sequence[float]): Among 4, 2, 1, 0.5. Defaults to (4, 2, 1, 0.5).
        num_outs (int): Output levels. Defaults to 5 (strides 4 .. 64 for a stride-16 input).
        in_index (int): Which backbone output to use. Defaults to -1.
        norm_cfg (dict): Defaults to ``dict(type='LN2d', eps=1e-6)``.
        init_cfg (dict | list, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 in_index: int = -1,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg)
        unsupported = [s for s in scale_factors if s not in (4.0, 2.0, 1.0, 0.5)]
        if unsupported:
            raise ValueError(f'scale_factors {unsupported} not supported; use 4, 2, 1, 0.5')
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs={num_outs} < {len(scale_factors)} scale factors')
        self.in_channels = in_channels
        self.scale_factors = tuple(scale_factors)
        self.num_outs = num_outs
        self.in_index = in_index
        dim = in_channels
        self.stages = nn.ModuleList()
        for scale in scale_factors:
            if scale == 4.0:
                layers = [
                    nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2),
                    build_norm_layer(norm_cfg, dim // 2),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim // 2, dim // 4, kernel_size=2, stride=2),
                ]
                width = dim // 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2)]
                width = dim // 2
            elif scale == 1.0:
                layers, width = [], dim
            else:
                layers, width = [nn.MaxPool2d(kernel_size=2, stride=2)], dim
            layers += [
                nn.Conv2d(width, out_channels, kernel_size=1, bias=False),
                build_norm_layer(norm_cfg, out_channels),
                nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
                build_norm_layer(norm_cfg, out_channels),
            ]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> Tuple[torch.Tensor, ...]:
        """Pyramid from one feature map.

        Args:
            inputs (Tensor | Sequence[Tensor]): B x C x h x w, or the backbone's tuple of maps.

        Returns:
            tuple[Tensor]: ``num_outs`` maps B x out_channels x (h * s) x (w * s), the scales in
            ``scale_factors`` order then the extra pooled levels.
        """
        x = inputs if torch.is_tensor(inputs) else inputs[self.in_index]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'SimpleFeaturePyramid expects B x {self.in_channels} x h x w, got '
                             f'{tuple(x.shape)}')
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
