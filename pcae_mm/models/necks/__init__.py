from .partial_decoder import PartialDecoder
from .multiscale_skip_decoder import MultiScaleSkipDecoder  # noqa: F401

__all__ = ['PartialDecoder']
