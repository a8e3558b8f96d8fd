from .base import MIMOutput
from .pcae import PCAE
from .mae import PixelMAE
from .sdae import SdAE
from .mr_mae import MRMAE, MRMCMAE  # noqa: F401

__all__ = ['MIMOutput', 'PCAE', 'PixelMAE', 'SdAE']
