"""Weighted kNN accuracy of a pre-trained checkpoint's frozen backbone (offline benchmark).

The same code as the online :class:`~pcae_mm.engine.hooks.KNNEvalHook`
(:func:`pcae_mm.evaluation.knn.knn_accuracies`, DINO's weighted kNN: cosine similarity, k
neighbours voting exp(sim / T)), run once on a checkpoint, like mmselfsup's old kNN benchmark.
The config (e.g. ``configs/benchmarks/knn/vit-base-p16_knn-k20_in1k.py``) gives the backbone,
the data preprocessor, the bank (a train subset), the queries (val) and the kNN settings::

    python tools/analysis/knn_eval.py configs/pcae/benchmarks/vit-base-p16_knn-k20_in1k.py \\
        --checkpoint work_dirs/pcae_.../epoch_300.pth [--bank-per-class 100] [--work-dir DIR]
    # several GPUs: features are gathered across ranks
    python -m torch.distributed.run --nproc_per_node 8 tools/analysis/knn_eval.py CONFIG \\
        --checkpoint CKPT --launcher pytorch

``--prefix teacher.module.`` scores the EMA teacher of PCAE / SdAE instead of the student.
The result is printed and written to ``WORK_DIR/knn.json``.
"""
import argparse
import json
import os
import os.path as osp

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, MODELS

from pcae_mm.evaluation.knn import knn_accuracies
from pcae_mm.utils.runtime import exit_process


def per_class_subset(dataset, per_class: int):
    """Keep the first ``per_class`` samples of every class (deterministic)."""
    labels = np.asarray(dataset.get_gt_labels())
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    return dataset.get_subset(sorted(keep.tolist()))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None,
                        help="pcae_mm pre-training checkpoint (default: the config's "
                        'model.backbone.init_cfg.checkpoint)')
    parser.add_argument('--prefix', default='backbone.',
                        help="state-dict prefix of the network to score ('teacher.module.' "
                        'for the EMA teacher)')
    parser.add_argument('--bank-per-class', type=int, default=None,
                        help='bank = the first N train images of every class (default: the '
                        "config's knn.bank_per_class)")
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = args.checkpoint or cfg.model.backbone.get('init_cfg', {}).get('checkpoint')
    if not checkpoint or not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} not found: give --checkpoint')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=checkpoint,
                                       prefix=args.prefix)
    cfg.work_dir = args.work_dir or osp.join(
        'work_dirs', 'knn', osp.splitext(osp.basename(args.config))[0])
    knn = dict(cfg.knn)
    per_class = knn.pop('bank_per_class', None)
    if args.bank_per_class is not None:
        per_class = args.bank_per_class
    runner = Runner(
        model=MODELS.build(cfg.model),  # an ImageClassifier without head: backbone + preprocessor
        work_dir=cfg.work_dir,
        default_scope=cfg.get('default_scope', 'mmpretrain'),
        env_cfg=cfg.get('env_cfg', dict(dist_cfg=dict(backend='nccl'))),
        launcher=args.launcher,
        visualizer=cfg.get('visualizer'),
        log_level=cfg.get('log_level', 'INFO'),
        cfg=cfg)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    model.backbone.init_weights()  # loads the checkpoint (verified, see pretrained loading)
    loaders = {}
    for name in ('bank_dataloader', 'query_dataloader'):
        loader_cfg = dict(knn.pop(name))
        dataset = loader_cfg['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if name == 'bank_dataloader' and per_class:
            dataset = per_class_subset(dataset, per_class)
        loader_cfg['dataset'] = dataset
        loaders[name] = runner.build_dataloader(loader_cfg, seed=runner.seed)
    settings = dict(dict(k=20, temperature=0.07, pool='cls'), **knn)  # + topk, chunk_size
    result = knn_accuracies({'student': model.backbone}, loaders['bank_dataloader'],
                            loaders['query_dataloader'], model.data_preprocessor, **settings)
    result = dict(result, checkpoint=checkpoint, prefix=args.prefix,
                  bank=len(loaders['bank_dataloader'].dataset),
                  queries=len(loaders['query_dataloader'].dataset), k=settings['k'],
                  temperature=settings['temperature'], pool=settings['pool'])
    if is_main_process():
        with open(osp.join(runner.log_dir, 'knn.json'), 'w') as f:
            json.dump(result, f, indent=2)
        print(json.dumps(result, indent=2))
    return result


if __name__ == '__main__':
    main()
    exit_process(0, barrier=True)  # a gloo process can abort at teardown without it
