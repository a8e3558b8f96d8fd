from .base import MIMOutput
from .mae import PixelMAE
from .mr_mae import MRMAE, MRMCMAE, MimicOut
from .pcae import PCAE
from .pr_mim import PartialOut
from .sdae import SdAE

__all__ = ['MIMOutput', 'MimicOut', 'MRMAE', 'MRMCMAE', 'PartialOut', 'PCAE', 'PixelMAE', 'SdAE']
