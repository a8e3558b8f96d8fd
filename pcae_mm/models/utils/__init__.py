from .furthest_sampling import furthest_point_sampling, nearest_patch
from .masking import MaskInfo, gather_tokens, num_visible, random_masking
from .partial_reconstruction import PartialReconstruction, Selection
from .token_reduction import TokenReduction, per_stage_keep, stage_locations

__all__ = [
    'MaskInfo', 'gather_tokens', 'num_visible', 'random_masking', 'TokenReduction',
    'per_stage_keep', 'stage_locations', 'furthest_point_sampling', 'nearest_patch',
    'PartialReconstruction', 'Selection'
]
