from .fast_loading import LoadImageBytes, LoadImageFast
from .jpeg_header import JPEGInfo, jpeg_info
from .loading import LoadImageChecked
from .tensor_processing import RandomFlipTensor, RandomResizedCropTensor

__all__ = [
    'LoadImageChecked', 'LoadImageFast', 'LoadImageBytes', 'RandomResizedCropTensor',
    'RandomFlipTensor', 'JPEGInfo', 'jpeg_info'
]
