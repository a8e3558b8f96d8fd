"""Train a pcae_mm model (mmpretrain's train.py arguments)."""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import pcae_mm  # noqa: F401 registers the components and the checkpoint allow-list
from pcae_mm.engine.hooks import DivergenceError
from pcae_mm.utils.checkpoint import (CheckpointError, check_complete,
                                      find_last_complete_checkpoint, list_checkpoints)
from pcae_mm.utils.runtime import (adapt_to_device, check_data_roots, default_work_dir,
                                   close_process_group, drop_disabled_hooks, local_rank_env,
                                   set_dataloader_defaults)


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
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by actual total batch / auto_scale_lr.base_batch_size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. train_dataloader.batch_size=64)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    local_rank_env(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge command-line arguments into the config."""
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
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint {args.resume!r} does not exist')
        check_complete(args.resume)  # names the file when it is incomplete or corrupt
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    drop_disabled_hooks(cfg)  # e.g. --cfg-options default_hooks.divergence_guard=None
    if not cfg.get('resume', False):  # a new run: never over another run's checkpoints
        protect_work_dir(cfg.work_dir, args.overwrite)
    set_dataloader_defaults(cfg, args.no_pin_memory, args.no_persistent_workers)
    return adapt_to_device(cfg)


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


def protect_work_dir(work_dir: str, overwrite: bool) -> None:
    """Refuse to start a new run over the checkpoints of another one (unless --overwrite)."""
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
    for path in found + ([pointer] if osp.isfile(pointer) else []):
        try:
            os.remove(path)
        except FileNotFoundError:  # another process of a distributed launch removed it
            pass
    print(f'--overwrite: deleted {len(found)} checkpoints of the previous run in {work_dir}')


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    cfg = merge_args(Config.fromfile(args.config), args)
    check_data_roots(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    try:
        main()
    except (DivergenceError, CheckpointError, FileExistsError) as e:
        sys.exit(f'{type(e).__name__}: {e}')
    close_process_group()  # only after a run that finished on every rank
