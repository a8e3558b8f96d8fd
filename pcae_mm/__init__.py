"""pcae_mm: importing this package registers every component into mmpretrain's registries.

Configs load it with ``custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)``.
"""
from .utils.checkpoint import allow_mmengine_checkpoints, safe_checkpoint_loader  # noqa: E402

allow_mmengine_checkpoints()
safe_checkpoint_loader()  # mmengine's loader passes weights_only=True explicitly

from .utils.quiet import quiet_model_building  # noqa: E402

quiet_model_building()  # mmengine's per-parameter init dump and known-harmless notes -> DEBUG

from . import datasets, downstream, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
