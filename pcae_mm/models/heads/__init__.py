from .feature_cosine_head import FeatureCosineHead
from .mimic_head import MimicHead
from .pixel_head import PartialPixelHead

__all__ = ['FeatureCosineHead', 'MimicHead', 'PartialPixelHead']
