"""The main job on a small built-in default: pre-train -> fine-tune -> Mask R-CNN -> UperNet.

Everything runs on the CPU in minutes, with the real code paths of the full recipes:

1. builds small datasets in the real formats from the photographs scikit-image ships (no
   network): ImageNet layout (4 classes), COCO instances with polygon masks, ADE20K pairs;
2. pre-trains a tiny ViT with the chosen method (tools/train.py's Runner), saving
   checkpoints, a labelled mask / kept-tokens / prediction picture (MIMVisualizationHook) and a
   loss-curve plot;
3. checks that the method learns: the same tiny config pre-trains on real labelled images
   (scikit-learn's 1797 handwritten digits) and KNNEvalHook scores its features on 497
   held-out digits at random init and after pre-training (MR-MAE first pre-trains the tiny MAE
   it mimics);
4. fine-tunes an ImageNet classifier from that checkpoint (configs/benchmarks/classification);
5. trains and evaluates Mask R-CNN (mmdet) and UperNet (mmseg) from the same checkpoint
   (configs/benchmarks/mask_rcnn, configs/benchmarks/upernet), shrunk only in size;
6. prints a summary table (also written to WORK_DIR/summary.json and summary.md);
7. with ``--compare``, pre-trains PCAE, SdAE, PR-MIM and MAE on the digits for the same counted
   training FLOPs and plots kNN top-1 against compute (tools/analysis/compare_methods.py).

    python -m tools.demo [--method pcae|sdae|pr_mim|mae|mr_mae] [--work-dir work_dirs/demo]

(from the repository root; ``python tools/demo.py`` works too). This file is the interface:
the arguments, the order of the stages and the summary table; the stages themselves are in
tools/demo_stages.py, the progress lines and stage logs in tools/demo_terminal.py.

The terminal shows one progress line per stage; each stage's full mmengine log goes to
WORK_DIR/logs/<stage>.log (--verbose also prints it). After the demo, the tiny configs run
as they are (their data_root is the demo's data/demo/imagenet), e.g.

    python tools/train.py configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

if not __package__:  # run by path: import as `python -m tools.demo` (PEP 366)
    sys.path[0] = osp.dirname(osp.dirname(osp.abspath(__file__)))  # the repository root
    __package__ = 'tools'

# mmcv-lite (a new machine, while the set-up compiles mmcv's ops) notes at import that it has no
# compiled ops; the stages that need them wait for them, saying so.
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import pcae_mm  # noqa: E402,F401
from pcae_mm.utils.quiet import quiet_model_building  # noqa: E402

from .demo_stages import (BENCH, METRICS, NEEDS_OPS, WORK_DIRS, build_datasets,  # noqa: E402
                          compare, downstream_config, learn_digits, pretrain, train)
from .demo_terminal import ROOT, Demo, rel  # noqa: E402
from .setup_state import MmcvOpsError, wait_for_mmcv_ops  # noqa: E402
from .tiny_data import DEMO_METHODS, TINY_CONFIGS  # noqa: E402
from .tiny_data.digits_knn import IMG, PATCH  # noqa: E402

TITLES = dict(classification='fine-tune', mask_rcnn='Mask R-CNN', upernet='UperNet')


def count(skip: Optional[str] = None) -> Callable[[str], int]:
    """An argparse type: a positive integer (argparse names the flag). 0 or less is refused
    naming the fix (``--skip STAGE`` where the flag sizes a stage that can be skipped), never
    taken as a silent way to drop a stage (issue 25: ``--knn-epochs 0`` dropped the learning
    check)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f'{value} is not a positive number' + (
                    f'; to leave the stage out, pass --skip {skip} instead' if skip else
                    ' (this stage cannot be skipped)'))
        return value
    return parse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', choices=sorted(DEMO_METHODS), default='pcae')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'demo'))
    parser.add_argument('--epochs', type=count(), default=6, help='pre-training epochs')
    parser.add_argument('--knn-epochs', type=count('knn'), default=40,
                        help='pre-training epochs of the learning check on the digits '
                        '(21 iterations each; the learning tests\' 40: shorter runs end in the '
                        'early dip of the kNN curve, see configs/pcae/README.md)')
    parser.add_argument('--finetune-epochs', type=count('classification'), default=6)
    parser.add_argument('--det-iters', type=count('mask_rcnn'), default=40,
                        help='Mask R-CNN iterations')
    parser.add_argument('--seg-iters', type=count('upernet'), default=40,
                        help='UperNet iterations')
    parser.add_argument('--images-per-class', type=count(), default=12,
                        help='training images per ImageNet class (4 classes)')
    parser.add_argument('--compare', action='store_true',
                        help='also compare PCAE, SdAE, PR-MIM and MAE at equal training FLOPs '
                        'on the digits (tools/analysis/compare_methods.py: a table and a plot '
                        'of kNN top-1 vs compute; about 5 minutes on 2 cores)')
    parser.add_argument('--compare-epochs', type=count(), default=40,
                        help='the comparison\'s budget: the FLOPs of this many MAE epochs '
                        '(the learning check\'s 40 by default)')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['knn', 'classification', 'mask_rcnn', 'upernet'],
                        help='stages to skip (knn: the learning check on the digits)')
    parser.add_argument('--verbose', action='store_true',
                        help='print the full mmengine logs instead of one progress line per '
                        'stage (they always go to WORK_DIR/logs/<stage>.log)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    quiet_model_building()
    demo = Demo(args)
    stages: List[str] = [s for s in BENCH if s not in args.skip]
    learning = 'knn' not in args.skip and args.knn_epochs > 0
    learning_stages = (2 if args.method == 'mr_mae' else 1) if learning else 0
    demo.num_stages = 2 + len(stages) + learning_stages + int(args.compare)
    demo.say(f'pcae-mm demo: {args.method}, tiny models on tiny data, CPU. One line per stage; '
             f'full logs in {rel(demo.log_dir)}/ (--verbose also prints them).')

    res = demo.stage('datasets', 'datasets', lambda _: dict(data=build_datasets(
        args.data_root, args.images_per_class, coco='mask_rcnn' in stages,
        ade20k='upernet' in stages)))
    data: Dict[str, str] = res.pop('data')
    demo.rows.append(dict(stage='datasets', result=', '.join(sorted(data)),
                          seconds=res['seconds'], where=rel(args.data_root)))

    pre = demo.stage('pretrain', f'pre-train {args.method}', lambda hook: pretrain(
        args.method, data['imagenet'], args.work_dir, args.epochs, hook))
    for name, path in pre.pop('teachers').items():
        demo.say(f'  teacher {name}: RANDOM tiny weights at {rel(path)} (demo only: real runs '
                 'load CLIP / DINO checkpoints)')
    summary = dict(method=args.method, config=TINY_CONFIGS[args.method], pretrain=pre,
                   stages={}, rows=demo.rows)
    demo.rows.append(dict(stage='pre-train',
                          result=f"loss {pre['loss_first']:.4f} -> {pre['loss_last']:.4f}",
                          seconds=pre['seconds'], where=rel(pre['checkpoint'])))
    if learning:
        demo.rows += learning_check(demo, args)
    if args.compare:
        demo.rows += comparison(demo, args)

    lengths = dict(classification=args.finetune_epochs, mask_rcnn=args.det_iters,
                   upernet=args.seg_iters)
    no_ops = None  # why mmcv's compiled ops will not come (the set-up's build failed)
    for name in stages:
        if name in NEEDS_OPS and no_ops is not None:
            demo.rows.append(dict(stage=name, result='not run: mmcv\'s compiled ops are missing'))
            continue
        try:
            res = demo.stage(name, TITLES[name], lambda hook, name=name: train(
                downstream_config(name, pre, data, args.work_dir, lengths[name]), hook),
                before=wait_for_mmcv_ops if name in NEEDS_OPS else None)
        except MmcvOpsError as e:
            no_ops = e
            demo.rows.append(dict(stage=name, result='not run: mmcv\'s compiled ops are missing'))
            continue
        summary['stages'][name] = res
        demo.rows.append(downstream_row(name, res, osp.join(args.work_dir, WORK_DIRS[name])))
    if pre.get('picture'):
        demo.rows.append(dict(stage='picture', result='labelled: mask, kept tokens, prediction',
                              where=rel(pre['picture'])))
    demo.rows.append(dict(stage='loss curve', result='pre-training loss vs iteration',
                          where=rel(pre['curves'])))
    demo.rows.append(dict(stage='logs', result='full mmengine log of each stage',
                          where=rel(demo.log_dir) + '/'))
    summary['seconds'] = round(time.time() - t0, 1)
    write_summary(summary, args.work_dir, demo.say)
    if no_ops is not None:
        raise no_ops
    return summary


def learning_check(demo: Demo, args: argparse.Namespace) -> List[dict]:
    """The method pre-trains on the digits (MR-MAE: after the MAE it mimics); the kNN rows."""
    work = osp.join(args.work_dir, f'{args.method}_digits')
    rows, teacher = [], None
    if args.method == 'mr_mae':  # a meaningful frozen teacher without a download
        teacher = osp.join(work, 'mae_teacher', 'backbone.pth')
        res = demo.stage('knn_teacher', 'learning: MAE', lambda hook: learn_digits(
            'mae', osp.join(work, 'mae_teacher'), args.knn_epochs, hook, save_to=teacher))
        rows += knn_rows(res.get('knn', {}), args.knn_epochs, res['seconds'], rel(teacher),
                         'MAE teacher')
    res = demo.stage('knn', 'learning (kNN)', lambda hook: learn_digits(
        args.method, work, args.knn_epochs, hook, teacher=teacher))
    rows += knn_rows(res.get('knn', {}), args.knn_epochs, res['seconds'], rel(work))
    rows.append(run_row(res['run']))
    for row in rows:  # the headline result, now (the table comes after the last stage)
        demo.say(f"  {row['stage']}: {row['result']}")
    return rows


def run_row(run: Dict[str, str]) -> dict:
    """What produced the kNN rows: the paper's method or not, the EMA schedule, the config."""
    paper = "the paper's method" if run['paper'] == 'yes' else run['paper']
    ema = '' if run['ema'] == '-' else f"; EMA teacher {run['ema']}"
    return dict(stage='kNN setting', result=f'{paper}; digits {IMG} px, patch {PATCH}{ema}',
                where=run['config'])


def comparison(demo: Demo, args: argparse.Namespace) -> List[dict]:
    """``--compare``: the methods at equal training FLOPs on the digits; one row per method and
    the plot (kNN top-1 vs compute)."""
    res = demo.stage('compare', 'equal compute', lambda _: compare(
        args.work_dir, args.compare_epochs))
    common = res['common_tflops']
    rows = [dict(stage=f"compare {r['method']}", seconds=r['seconds'], where=r['config'],
                 result=f"kNN {r['knn_init']:.1f}% -> {r['knn_at_common']:.1f}% at {common:.2f} "
                 f"TFLOPs ({r['epochs']} epoch{'s' * (r['epochs'] != 1)}, "
                 f"{r['gflops_per_iter']:.2f} GFLOPs / it)")
            for r in res['rows']]
    rows.append(dict(stage='compare plot', where=rel(res['files']['png']),
                     result=f"kNN top-1 vs training FLOPs; ahead at equal compute: "
                     f"{res['winner']} (table: {rel(res['files']['md'])})"))
    demo.say(f"  equal compute ({res['budget']}): ahead {res['winner']}; plot "
             f"{rel(res['files']['png'])}")
    return rows


# ------------------------------------------------------------------ the summary table
def downstream_row(name: str, res: dict, where: str) -> dict:
    """The table row of a downstream stage: its loss and validation metrics."""
    metrics = ', '.join(f'{k} {res[k]:.4g}' for k in METRICS[name] if k in res)
    loss = (f"loss {res['loss_first']:.3f} -> {res['loss_last']:.3f}; "
            if res.get('loss_first') is not None else '')
    return dict(stage=name, result=loss + metrics, seconds=res['seconds'], where=rel(where))


def knn_rows(knn: Dict[str, list], epochs: int, seconds: float, where: str,
             name: Optional[str] = None) -> List[dict]:
    """``kNN`` rows: top-1 at random init -> after pre-training on the digits, per network."""
    rows = []
    for key, (first, last) in knn.items():
        if key.endswith('_top1'):
            net = name or key[:-len('_top1')]
            rows.append(dict(
                stage=f'kNN {net}', seconds=seconds, where=where,
                result=f'digits top-1 {first:.1f}% random init -> {last:.1f}% after '
                f'{epochs} epoch{"s" * (epochs != 1)} ({last - first:+.1f})'))
    return rows


def render_table(rows: List[dict]) -> str:
    cells = [(r['stage'], r.get('result', ''),
              f"{r['seconds']:.1f} s" if r.get('seconds') is not None else '', r.get('where', ''))
             for r in rows]
    head = ('stage', 'result', 'time', 'where')
    width = [max(len(c[i]) for c in cells + [head]) for i in range(4)]
    fmt = lambda c: '| ' + ' | '.join(x.ljust(w) for x, w in zip(c, width)) + ' |'  # noqa: E731
    return '\n'.join([fmt(head), '|' + '|'.join('-' * (w + 2) for w in width) + '|'] +
                     [fmt(c) for c in cells])


def write_summary(summary: dict, work_dir: str, say: Callable[[str], None] = print) -> None:
    table = render_table(summary['rows'])
    learnt = any(r['stage'].startswith('kNN') for r in summary['rows'])
    say(f"\n{summary['method']} done in {summary['seconds']} s (tiny models on tiny data: "
        + ('the kNN rows measure learning on 497 held-out real digits; the other numbers show '
           'that every stage runs, not accuracy)\n' if learnt else
           'the numbers show that every stage runs, not accuracy)\n'))
    say(table)
    with open(osp.join(work_dir, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2, default=str)


if __name__ == '__main__':
    try:
        main()
    except MmcvOpsError:  # said above the table: why, where the log is, how to retry
        sys.exit(1)
