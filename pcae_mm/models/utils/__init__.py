from .drop_path import float_drop_probs
from .furthest_sampling import furthest_point_sampling, nearest_patch
from .masking import MaskInfo, gather_tokens, num_visible, random_masking
from .partial_reconstruction import PartialReconstruction, Selection
from .targets import patch_pixels, patchify, standardize
from .token_reduction import TokenReduction, build_token_reduction, stage_locations

__all__ = [
    'MaskInfo', 'gather_tokens', 'num_visible', 'random_masking', 'TokenReduction',
    'build_token_reduction', 'stage_locations', 'furthest_point_sampling', 'nearest_patch',
    'PartialReconstruction', 'Selection', 'patch_pixels', 'patchify', 'standardize',
    'float_drop_probs'
]
