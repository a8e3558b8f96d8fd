"""Shared test helpers (import as ``from tests.helpers import ...``; pytest.ini puts the
repository root on ``sys.path``). Fixtures live in ``tests/conftest.py``."""
import os
import os.path as osp

import torch

# The tiny CPU configs: one list, shared with the demo (tools/tiny_data/configs.py).
from tools.tiny_data.configs import TINY_CONFIGS, tiny_config  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_pythonpath() -> str:
    """``PYTHONPATH`` for a tool subprocess: the repository first, then this process's own
    entries. Keeping them matters: the first half of tools/run_tests.sh puts tests/no_ops there
    so that every process hides mmcv's compiled ops (as mmcv-lite would); a subprocess given
    ``PYTHONPATH=ROOT`` alone saw the ops on a warm machine and passed, and failed in CI."""
    rest = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p and p != ROOT]
    return os.pathsep.join([ROOT] + rest)


#: A user's debugging switches that would change what a tool prints or loads.
_DROPPED = ('PCAE_MM_TRACEBACK', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')


def tool_env(**extra: str) -> dict:
    """The environment of a tool subprocess (tools/*.py, dist_train.sh): this process's, with
    the repository importable (``repo_pythonpath``), one OpenMP thread, a user's debugging
    switches dropped (``PCAE_MM_TRACEBACK``, ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), then
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(PYTHONPATH=repo_pythonpath(), OMP_NUM_THREADS='1')
    env.update(extra)
    return env


def dali_available() -> bool:
    """Whether NVIDIA DALI imports (the optional DALIDataPreprocessor backend). Its tests skip
    where it does not, except under tools/run_tests.sh, which installs it and sets
    ``PCAE_MM_REQUIRE_DALI=1``: there a test fails instead (tests/test_datasets/
    test_dali_decode.py)."""
    from pcae_mm.datasets.dali_decode import dali_installed
    return dali_installed()


def tiny_vit(**kwargs) -> dict:
    """A 4-block 64-wide ViT on 96 px images (36 patches) for fast CPU tests."""
    cfg = dict(type='MIMViT',
               arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
               img_size=96, patch_size=16, mask_ratio=0.75)
    cfg.update(kwargs)
    return cfg


def save_random_teachers(cfg, folder, seed: int = 100) -> None:
    """Random tiny frozen teachers (MR-MAE) saved where ``cfg`` looks for them, in
    mmpretrain's layout; seeded (``seed + i`` for the i-th teacher), so every call writes the
    same weights."""
    from mmpretrain.registry import MODELS
    for i, (name, t) in enumerate(cfg.model.teachers.items()):
        torch.manual_seed(seed + i)
        vit = MODELS.build(t.backbone)
        vit.init_weights()
        path = osp.join(str(folder), f'{name}.pth')
        torch.save({'state_dict': {'backbone.' + k: v for k, v in vit.state_dict().items()}},
                   path)
        t.checkpoint = path


def random_teacher_options(config: str, folder, seed: int = 0) -> list:
    """Random tiny frozen teachers of the MR-MAE ``config`` saved to ``folder``
    (:func:`save_random_teachers`); the ``--cfg-options`` pointing ``config`` at them."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    save_random_teachers(cfg, folder, seed)
    return [f'model.teachers.{name}.checkpoint={t.checkpoint}'
            for name, t in cfg.model.teachers.items()]


def build_tiny_model(name: str, folder, progress: float = 1.0):
    """The tiny ``name`` model (:data:`TINY_CONFIGS`), built and initialised, ready for a
    training step outside a Runner: MR-MAE's random teachers saved to ``folder``, an EMA
    teacher's schedule set (10 updates), PR-MIM's progress at ``progress``.

    Returns:
        tuple: the model and its input size in pixels.
    """
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(tiny_config(name))
    if 'teachers' in cfg.model:
        save_random_teachers(cfg, folder)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if hasattr(model, 'teacher'):
        model.teacher.set_schedule(10)
    if getattr(model, 'partial_reconstruction', None) is not None:
        model.partial_reconstruction.set_progress(progress)
    return model, cfg.model.backbone.img_size
