"""pcae_mm: importing this package registers every component into mmpretrain's registries.

Configs load it with ``custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)``.
"""
import warnings

# mmcv without its compiled ops (mmcv-lite, or while a first set-up still builds them in the
# background: tools/setup_env.sh) warns at import that ``MultiScaleDeformableAttention`` is
# missing and to "install mmcv rather than mmcv-lite". pcae_mm never uses that module, and the
# parts that need the ops (mmdet / mmseg models) wait for them or say so by name
# (tools/setup_state.wait_for_mmcv_ops, the config check), so the warning is only noise in
# every run's first line. Set before anything here imports mmcv.
warnings.filterwarnings('ignore', message=r'Fail to import ``MultiScaleDeformableAttention``',
                        category=UserWarning, module=r'mmcv\.cnn\.bricks\.transformer')

from .utils.checkpoint import allow_mmengine_checkpoints, safe_checkpoint_loader  # noqa: E402

allow_mmengine_checkpoints()
safe_checkpoint_loader()  # mmengine's loader passes weights_only=True explicitly

from .utils.quiet import quiet_model_building  # noqa: E402

quiet_model_building()  # mmengine's per-parameter init dump and known-harmless notes -> DEBUG

from . import datasets, downstream, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
