"""Layer-wise lr decay for any model with a ViT backbone (mmdet detectors, mmseg segmentors)."""
from functools import partial
from typing import Callable, List, Optional

import torch.nn as nn
from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-decay constructor, usable inside mmdet and mmseg.

    mmpretrain's constructor needs ``model.get_layer_depth`` (only its classifiers have it),
    mmdet's only knows ConvNeXt and mmseg's dispatches on backbone class names. This one takes
    the depth from ``model.backbone.get_layer_depth(name, prefix='backbone.')`` (pcae_mm's
    ``MIMViT`` / ``DenseViT`` and mmpretrain's ``VisionTransformer`` have it): embeddings get
    ``rate ** (L + 1)``, block i ``rate ** (L - i)``, and everything outside the backbone (neck,
    heads) the full lr. From an mmdet / mmseg config::

        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
            constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.65, flat_decay_mult=0.0,
                               custom_keys={'pos_embed': dict(decay_mult=0.)}))

    ``paramwise_cfg`` is that of :class:`LearningRateDecayOptimWrapperConstructor`
    (``layer_decay_rate``, ``custom_keys`` with ``decay_mult``, ``bias_decay_mult``,
    ``norm_decay_mult``, ``flat_decay_mult``).
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   get_layer_depth: Optional[Callable] = None,
                   **kwargs) -> None:
        if get_layer_depth is None and prefix == '' and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if backbone is None or not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(
                    f'layer-wise lr decay needs a model with get_layer_depth or a `backbone` '
                    f'that has one; {type(module).__name__} (backbone '
                    f'{type(backbone).__name__}) has neither')
            get_layer_depth = partial(backbone.get_layer_depth, prefix='backbone.')
        super().add_params(params, module, prefix, get_layer_depth=get_layer_depth, **kwargs)
