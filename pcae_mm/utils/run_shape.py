"""What ``--resume`` may continue (issue 25): a finished run, a shorter run, another shape.

Checked by ``tools/train.py`` before anything is built, from the checkpoint's ``meta`` (read
without loading its tensors):

* a checkpoint already at the run's end (``train_cfg.max_epochs`` / ``max_iters``): the run is
  finished (:class:`RunFinished`: the tool says so and exits 0, so a job that re-runs the same
  ``--resume`` command until the run is complete, e.g. after preemption, ends cleanly);
* a checkpoint beyond it: nothing could be trained (:class:`RunShapeError`);
* another per-process batch size or number of processes than the checkpoint's run
  (``meta.pcae_mm``, recorded by :class:`~pcae_mm.engine.hooks.ExactResumeHook`): refused
  unless ``--resume-reshape``, because the iteration-counted schedules would silently run at
  the old pace. The hook converts them when it is accepted, and also compares the number of
  iterations per epoch, which is only known once the dataset is built.
"""
import os
import os.path as osp
from typing import Optional

from .checkpoint import CheckpointError, safe_load


class RunShapeError(CheckpointError):
    """``--resume`` would continue a run with another shape or past its end."""


class RunFinished(Exception):
    """The checkpoint given to ``--resume`` is already at the run's end."""


def launch_world_size(launcher: str = 'none') -> int:
    """The number of processes of this launch, from the launcher's environment (before any
    process group exists)."""
    names = {'pytorch': ('WORLD_SIZE', ), 'slurm': ('SLURM_NTASKS', 'WORLD_SIZE'),
             'mpi': ('OMPI_COMM_WORLD_SIZE', 'WORLD_SIZE')}.get(launcher, ())
    for var in names:
        value = os.environ.get(var, '').strip()
        if value.isdigit():
            return int(value)
    return 1


class LaunchError(RuntimeError):
    """A distributed launcher was named but this process was not started by it."""


#: what each launcher's processes find in their environment (mmengine's init_dist reads them)
LAUNCH_ENV = {'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
              'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE')}


def check_launch_env(launcher: str) -> None:
    """Raise :class:`LaunchError` when ``--launcher`` names a launcher this process was not
    started by (mmengine's ``init_dist`` fails with ``KeyError: 'RANK'`` deep inside)."""
    missing = [v for v in LAUNCH_ENV.get(launcher, ()) if v not in os.environ]
    if missing:
        how = {'pytorch': 'bash tools/dist_train.sh CONFIG NUM_GPUS [ARGS] (torchrun)',
               'slurm': 'bash tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR (srun)',
               'mpi': 'mpirun -np N python tools/train.py CONFIG --launcher mpi'}[launcher]
        raise LaunchError(
            f'--launcher {launcher}: this process was not started by that launcher (no '
            f'{", ".join(missing)} in the environment). Start it with {how}, or drop '
            '--launcher for one process.')


def read_checkpoint_meta(path: str) -> dict:
    """The ``meta`` dict of a checkpoint, read without loading its tensors (memory-mapped for
    zip checkpoints)."""
    ckpt = safe_load(path, map_location='cpu', mmap=True)
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return dict(meta or {})


def _epoch_based(train_cfg) -> bool:
    t = str(train_cfg.get('type', '') or '')
    if t:
        return 'Iter' not in t
    if 'by_epoch' in train_cfg:
        return bool(train_cfg['by_epoch'])
    return not ('max_iters' in train_cfg and 'max_epochs' not in train_cfg)


def check_resume(cfg, path: str, allow_reshape: bool = False,
                 world_size: Optional[int] = None) -> Optional[str]:
    """Check that ``--resume path`` has something to continue, with the run's shape.

    Returns:
        str | None: a note for the user (old checkpoint: shape unknown), or None.

    Raises:
        RunFinished: the checkpoint is at the run's end.
        RunShapeError: it is beyond the end, or the shape changed without ``allow_reshape``.
    """
    meta = read_checkpoint_meta(path)
    train_cfg = cfg.get('train_cfg') or {}
    name = osp.basename(path)
    if _epoch_based(train_cfg):
        unit, done, planned = 'epoch', meta.get('epoch'), train_cfg.get('max_epochs')
        key = 'train_cfg.max_epochs'
    else:
        unit, done, planned = 'iteration', meta.get('iter'), train_cfg.get('max_iters')
        key = 'train_cfg.max_iters'
    if isinstance(done, int) and isinstance(planned, int) and not isinstance(planned, bool):
        if done > planned:
            raise RunShapeError(
                f'cannot resume {path}: it was saved after {unit} {done}, beyond this run\'s end '
                f'({key}={planned}), so there is nothing to train. To train longer resume with '
                f'{key} above {done}; to evaluate it, run tools/test.py CONFIG {path}.')
        if done == planned:
            raise RunFinished(
                f'nothing to train: {name} was saved after {unit} {done} of {key}={planned}, '
                f'so this run is finished ({path}). To train it longer, resume with a larger '
                f'{key} (e.g. --resume --cfg-options {key}={2 * planned}); to evaluate it, '
                f'run tools/test.py CONFIG {path}.')
    saved = meta.get('pcae_mm') or {}
    loader = cfg.get('train_dataloader') or {}
    now = dict(batch_size=loader.get('batch_size'),
               world_size=world_size if world_size is not None else 1)
    if 'batch_size' not in saved and 'world_size' not in saved:
        return (f'--resume: {name} predates pcae_mm\'s run-shape record (batch size, number '
                'of processes): a change of either cannot be detected before the run starts')
    diffs = [f'{what} {saved[k]} -> {now[k]}' for k, what in (
        ('batch_size', 'batch size per process'), ('world_size', 'processes'))
        if saved.get(k) is not None and now.get(k) is not None and saved[k] != now[k]]
    if diffs and not allow_reshape:
        total_old = (saved.get('batch_size') or 0) * (saved.get('world_size') or 0)
        total_new = (now['batch_size'] or 0) * now['world_size']
        raise RunShapeError(
            f'cannot resume {path} as it is: this run has another shape ({"; ".join(diffs)}; '
            f'total batch {total_old} -> {total_new}). The learning-rate and EMA schedules are '
            'counted in iterations, and the number of iterations per epoch changes with the '
            'total batch: continued as they are, they would run at the old pace (a distorted '
            'schedule). Resume with the checkpoint\'s shape '
            f"(train_dataloader.batch_size={saved.get('batch_size')} on "
            f"{saved.get('world_size')} process(es)), or pass --resume-reshape to continue with "
            'the new shape: the iteration-based schedules, the EMA schedule and the iteration '
            'counter are then converted to the new iterations per epoch (same position and '
            'length in epochs; the learning rate values are kept).')
    return None
