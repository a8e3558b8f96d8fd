from .amp import DeviceAmpOptimWrapper
from .trainable_params_constructor import TrainableParamsOptimWrapperConstructor
from .vit_layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor

__all__ = [
    'DeviceAmpOptimWrapper', 'TrainableParamsOptimWrapperConstructor',
    'ViTLayerDecayOptimWrapperConstructor'
]
