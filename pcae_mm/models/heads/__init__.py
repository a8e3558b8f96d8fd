from .feature_cosine_head import FeatureCosineHead
from .pixel_head import PartialPixelHead
from .mimic_head import MimicHead  # noqa: F401

__all__ = ['FeatureCosineHead', 'PartialPixelHead']
