"""pcae_mm: importing this package registers every component into mmpretrain's registries.

Configs load it with ``custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)``.
"""
from .utils.checkpoint import allow_mmengine_checkpoints  # noqa: E402

allow_mmengine_checkpoints()

from . import datasets, downstream, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
