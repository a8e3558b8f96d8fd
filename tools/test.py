"""Evaluate a checkpoint with a config's test loop (mmpretrain's test.py arguments)."""
import argparse
import os
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

import pcae_mm  # noqa: F401
from pcae_mm.utils.checkpoint import CheckpointError, check_complete
from pcae_mm.utils.config_check import (CfgOptionsAction, ConfigCheckError,
                                        add_config_check_args, check_config)
from pcae_mm.utils.runtime import (adapt_to_device, check_data_roots, exit_process,
                                   default_work_dir, local_rank_env, set_dataloader_defaults)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump the metrics (or predictions) to this pickle file')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, key=value')
    add_config_check_args(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    local_rank_env(args.local_rank)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    check_complete(args.checkpoint)  # names the file when it is incomplete or corrupt
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    file_keys = set(cfg.keys())  # what the config files define, before --cfg-options
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if not args.no_config_check:  # unknown keys and impossible values, before building
        check_config(cfg, args.config, file_keys, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    set_dataloader_defaults(cfg)
    adapt_to_device(cfg)
    check_data_roots(cfg)
    if args.out:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    try:
        main()
    except (CheckpointError, ConfigCheckError, FileNotFoundError) as e:
        if os.environ.get('PCAE_MM_TRACEBACK'):
            raise
        exit_process(f'{type(e).__name__}: {e}')
    exit_process(0, barrier=True)  # a gloo process can abort at teardown without it
