"""What mmdet / mmseg (and mmpretrain fine-tuning) need to consume pcae_mm checkpoints.

Everything registers into mmpretrain's registries, so mmdet / mmseg configs refer to it as
``type='mmpretrain.DenseViT'``, ``'mmpretrain.SimpleFeaturePyramid'`` and
``constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor'``; importing this package does
not import mmdet or mmseg.
"""
from ..utils.pretrained import LoadReport, init_weights_verified, load_pretrained, read_state_dict
from .converters import (convert_checkpoint, extract_backbone, from_mmseg_mae, from_timm,
                         to_mmseg_mae, to_timm)
from .dense_vit import DenseViT
from .num_classes_check_hook import NumClassesCheckHook
from .simple_feature_pyramid import SimpleFeaturePyramid

__all__ = [
    'DenseViT', 'SimpleFeaturePyramid', 'NumClassesCheckHook', 'LoadReport', 'load_pretrained', 'init_weights_verified',
    'read_state_dict', 'convert_checkpoint', 'extract_backbone', 'to_timm', 'from_timm',
    'to_mmseg_mae', 'from_mmseg_mae'
]
