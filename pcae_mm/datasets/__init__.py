from .dali_decode import DALIDataPreprocessor  # noqa: F401
from .digits import DigitsDataset  # noqa: F401
from .gpu_decode import GPUDecodeDataPreprocessor  # noqa: F401
from .imagenet_layout import ImageNetLayout  # noqa: F401
from .transforms import *  # noqa: F401,F403
