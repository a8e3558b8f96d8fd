"""Train a pcae_mm model (mmpretrain's train.py arguments)."""
import argparse
import os
import os.path as osp
import traceback

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import pcae_mm  # noqa: F401 registers the components and the checkpoint allow-list
from pcae_mm.datasets.imagenet_layout import DatasetLayoutError
from pcae_mm.engine.fsdp import check_strategy_config
from pcae_mm.engine.hooks import DivergenceError
from pcae_mm.utils.checkpoint import (CheckpointError, check_complete,
                                      find_last_complete_checkpoint, list_checkpoints)
from pcae_mm.utils.config_check import (CfgOptionsAction, ConfigCheckError,
                                        add_config_check_args, check_config)
from pcae_mm.utils.run_shape import (LaunchError, RunFinished, check_launch_env, check_resume,
                                     launch_world_size)
from pcae_mm.utils.workdir_lock import WorkDirLock, WorkDirLockedError, is_rank_zero
from pcae_mm.utils.runtime import (adapt_to_device, check_data_roots, default_work_dir,
                                   drop_disabled_hooks, exit_process, local_rank_env,
                                   prepare_compile, set_dataloader_defaults)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the last complete one in the '
        'work dir')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start a new run in a work dir that holds checkpoints, deleting them')
    parser.add_argument(
        '--resume-reshape', action='store_true',
        help='accept a --resume with another batch size or number of processes than the '
        'checkpoint\'s run: its iteration-based schedules (learning rate, EMA) and iteration '
        'counter are converted to the new iterations per epoch')
    parser.add_argument(
        '--take-over-lock', action='store_true',
        help='take over the work dir lock left by a run on another host that did not release '
        'it (only when that run is no longer going)')
    add_config_check_args(parser)
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper; without a GPU: CPU '
                        'autocast with a real loss scaler, DeviceAmpOptimWrapper)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by actual total batch / auto_scale_lr.base_batch_size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config settings, key=value (e.g. train_dataloader.batch_size=64, '
        'optim_wrapper.clip_grad="dict(max_norm=3.0)")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    local_rank_env(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace, protect: bool = True) -> Config:
    """Merge command-line arguments into the config.

    With ``protect`` (the default) a new run is refused over another run's checkpoints here;
    :func:`main` does that itself, once it owns the work dir.
    """
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(args.config)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, auto_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if osp.isdir(args.resume):
            raise IsADirectoryError(
                f'--resume {args.resume!r} is a directory: give a checkpoint file '
                f'(--resume {osp.join(args.resume, "epoch_N.pth")}), or resume the last '
                f'complete checkpoint of a work dir with --work-dir {args.resume} --resume')
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint {args.resume!r} does not exist')
        check_complete(args.resume)  # names the file when it is incomplete or corrupt
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    drop_disabled_hooks(cfg)  # e.g. --cfg-options default_hooks.divergence_guard=None
    prepare_compile(cfg)  # --cfg-options compile=True: compile the forward, not the step
    if getattr(args, 'resume_reshape', False):
        allow_reshape(cfg)
    if protect and not cfg.get('resume', False):  # a new run: never over another's checkpoints
        protect_work_dir(cfg.work_dir, args.overwrite)
    set_dataloader_defaults(cfg, args.no_pin_memory, args.no_persistent_workers)
    return adapt_to_device(cfg, amp=args.amp)


def auto_resume_checkpoint(work_dir: str):
    """The last complete checkpoint of ``work_dir`` (None: nothing to resume, a new run)."""
    found = list_checkpoints(work_dir)
    path = find_last_complete_checkpoint(work_dir)
    if path is None and found:
        raise CheckpointError(
            f'--resume: no complete checkpoint in {work_dir!r}; every one is incomplete or '
            f'corrupt: {[osp.basename(p) for p in found]}. Start a new run with --overwrite or '
            'another --work-dir.')
    if path is not None:
        print(f'--resume: resuming from the last complete checkpoint {path}')
    return path


def protect_work_dir(work_dir: str, overwrite: bool, delete: bool = True) -> None:
    """Refuse to start a new run over the checkpoints of another one (unless --overwrite;
    then only the process with ``delete`` removes them: rank 0, which owns the work dir)."""
    found = list_checkpoints(work_dir)
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not found and not osp.isfile(pointer):
        return
    if not overwrite:
        raise FileExistsError(
            f'work dir {work_dir!r} already holds the checkpoints of a run '
            f'({", ".join(osp.basename(p) for p in found[:3]) or "last_checkpoint"}'
            f'{", ..." if len(found) > 3 else ""}). Continue it with --resume, start the new '
            'run in another --work-dir, or pass --overwrite to delete them and start over.')
    if not delete:
        return
    for path in found + ([pointer] if osp.isfile(pointer) else []):
        try:
            os.remove(path)
        except FileNotFoundError:  # another process of a distributed launch removed it
            pass
    print(f'--overwrite: deleted {len(found)} checkpoints of the previous run in {work_dir}')


# ---------------------------------------------------------------------------------------------
# checks before any work (issue 25)
# ---------------------------------------------------------------------------------------------
def allow_reshape(cfg: Config) -> None:
    """--resume-reshape: let ExactResumeHook convert the schedules to the new run shape."""
    hook = (cfg.get('default_hooks') or {}).get('exact_resume')
    if not hook:
        raise ConfigCheckError(
            '--resume-reshape converts the schedules in ExactResumeHook '
            '(default_hooks.exact_resume), which this config turns off: turn it back on, or '
            'resume with the checkpoint\'s batch size and number of processes')
    hook.allow_reshape = True


def check_work_dir(work_dir: str) -> None:
    """A work dir must be (or become) a directory."""
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        raise NotADirectoryError(
            f'--work-dir {work_dir!r} is a file, not a directory. Name a directory (it is '
            'created when missing), or move the file away.')


def preflight(cfg: Config, args: argparse.Namespace, file_keys: set) -> None:
    """Everything that can be checked before the run owns its work dir and builds anything:
    the config's keys and values, the FSDP strategy, the work dir, the data folders, and what
    --resume would continue."""
    check_launch_env(args.launcher)
    if not args.no_config_check:
        check_config(cfg, args.config, file_keys, args.cfg_options)
    check_strategy_config(cfg)
    check_work_dir(cfg.work_dir)
    if not cfg.get('resume', False):  # refused here already; deleted (--overwrite) once owned
        protect_work_dir(cfg.work_dir, args.overwrite, delete=False)
    check_data_roots(cfg)
    if cfg.get('resume', False) and cfg.get('load_from'):
        note = check_resume(cfg, cfg.load_from, args.resume_reshape,
                            launch_world_size(args.launcher))
        if note:
            print(note)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} ' + (
            'is a directory: give one of its .py files' if osp.isdir(args.config) else
            'does not exist'))
    cfg = Config.fromfile(args.config)
    file_keys = set(cfg.keys())  # what the config files define, before --cfg-options
    cfg = merge_args(cfg, args, protect=False)
    try:
        preflight(cfg, args, file_keys)
    except RunFinished as e:  # not an error: a re-run of a finished run's --resume command
        print(e)
        return
    rank_zero = is_rank_zero(args.launcher)
    lock = WorkDirLock(cfg.work_dir, take_over=args.take_over_lock) if rank_zero else None
    if lock is not None:
        lock.acquire()  # before anything is written; released at exit, however it ends
        if lock.note:
            print(lock.note)
    try:
        if not cfg.get('resume', False):  # a new run: never over another run's checkpoints
            protect_work_dir(cfg.work_dir, args.overwrite, delete=rank_zero)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()
    finally:
        if lock is not None:
            lock.release()


#: errors of bad input that name the problem and the fix: one line, no traceback
#: (PCAE_MM_TRACEBACK=1 shows the traceback)
USER_ERRORS = (DivergenceError, CheckpointError, FileExistsError, FileNotFoundError,
               NotADirectoryError, IsADirectoryError, PermissionError, ConfigCheckError,
               WorkDirLockedError, DatasetLayoutError, LaunchError)


if __name__ == '__main__':
    try:
        main()
    except USER_ERRORS as e:
        if os.environ.get('PCAE_MM_TRACEBACK'):
            raise
        exit_process(f'{type(e).__name__}: {e}')
    except KeyboardInterrupt:
        exit_process('interrupted: the checkpoints written so far are complete and kept (a save '
                     'in progress is discarded); continue with --resume')
    except Exception:  # a failed rank exits 1 with its traceback, never SIGABRT at teardown
        traceback.print_exc()
        exit_process(1)
    exit_process(0, barrier=True)  # the barrier only after a run that finished on every rank
