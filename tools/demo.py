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
6. prints a summary table (also written to WORK_DIR/summary.json and summary.md).

    python tools/demo.py [--method pcae|sdae|pr_mim|mae|mr_mae] [--work-dir work_dirs/demo]

The terminal shows one progress line per stage; each stage's full mmengine log goes to
WORK_DIR/logs/<stage>.log (--verbose also prints it). After the demo, the tiny configs run
as they are (their data_root is the demo's data/demo/imagenet), e.g.

    python tools/train.py configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py
"""
import argparse
import contextlib
import json
import logging
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

import pcae_mm  # noqa: F401
from pcae_mm.utils.quiet import quiet_model_building
from pcae_mm.visualization.curves import plot_curves

if __package__:  # imported as tools.demo (the tests)
    from .tiny_data import (COCO_CLASSES, make_tiny_ade, make_tiny_coco, make_tiny_imagenet,
                            prepare_for_runner, tiny_classification, tiny_mask_rcnn,
                            tiny_upernet)
    from .tiny_data.digits_knn import (METHODS, digits_cfg, save_backbone,
                                       use_pretrained_teacher)
else:  # run as a script: Python puts tools/ on sys.path
    from tiny_data import (COCO_CLASSES, make_tiny_ade, make_tiny_coco, make_tiny_imagenet,
                           prepare_for_runner, tiny_classification, tiny_mask_rcnn, tiny_upernet)
    from tiny_data.digits_knn import METHODS, digits_cfg, save_backbone, use_pretrained_teacher

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH = {
    'classification': 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py',
    'mask_rcnn':
    'configs/benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py',
    'upernet':
    'configs/benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py',
}
TITLES = dict(classification='fine-tune', mask_rcnn='Mask R-CNN', upernet='UperNet')
METRICS = {
    'classification': ['accuracy/top1'],
    'mask_rcnn': ['coco/bbox_mAP', 'coco/segm_mAP'],
    'upernet': ['mIoU', 'aAcc'],
}
LOG_TAIL = 40  # lines of a failed stage's log shown on the terminal


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--method', choices=sorted(METHODS), default='pcae')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--data-root', default=osp.join(ROOT, 'data', 'demo'))
    parser.add_argument('--epochs', type=int, default=6, help='pre-training epochs')
    parser.add_argument('--knn-epochs', type=int, default=20,
                        help='pre-training epochs of the learning check on the digits '
                        '(21 iterations each)')
    parser.add_argument('--finetune-epochs', type=int, default=6)
    parser.add_argument('--det-iters', type=int, default=40, help='Mask R-CNN iterations')
    parser.add_argument('--seg-iters', type=int, default=40, help='UperNet iterations')
    parser.add_argument('--images-per-class', type=int, default=12,
                        help='training images per ImageNet class (4 classes)')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['knn', 'classification', 'mask_rcnn', 'upernet'],
                        help='stages to skip (knn: the learning check on the digits)')
    parser.add_argument('--verbose', action='store_true',
                        help='print the full mmengine logs instead of one progress line per '
                        'stage (they always go to WORK_DIR/logs/<stage>.log)')
    return parser.parse_args(argv)


def rel(path: Optional[str]) -> str:
    """A path as the user typed it from the repository root, when it is under it."""
    if not path:
        return ''
    r = osp.relpath(path, ROOT)
    return path if r.startswith('..') else r


# ------------------------------------------------------------------ terminal and stage logs
class Tee:
    """A text stream writing to several (the terminal and a stage log with --verbose)."""

    def __init__(self, *streams) -> None:
        self.streams = streams
        self.encoding = getattr(streams[0], 'encoding', 'utf-8')

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def stage_output(log_file: str, verbose: bool) -> Iterator[None]:
    """Send everything a stage prints (stdout, stderr, mmengine loggers) to ``log_file``
    (and, with ``verbose``, to the terminal as well).

    mmengine loggers keep the stream ``sys.stdout`` was when they were made, so their console
    handlers are pointed at the file for the stage and back to the terminal afterwards.
    """
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    old_out, old_err = sys.stdout, sys.stderr
    swapped = []
    with open(log_file, 'w', buffering=1) as log:
        f = Tee(old_out, log) if verbose else log

        def redirect(to_file: bool) -> None:
            for logger in list(MMLogger._instance_dict.values()):
                for h in logger.handlers:
                    if isinstance(h, logging.FileHandler) or not isinstance(
                            h, logging.StreamHandler):
                        continue
                    if to_file and h.stream in (old_out, old_err):
                        swapped.append((h, h.stream))
                        h.setStream(f)
                    elif not to_file and h.stream is f:  # made during the stage
                        h.setStream(old_out)

        redirect(True)
        sys.stdout = sys.stderr = f
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            for h, stream in swapped:
                h.setStream(stream)
            redirect(False)


class EtaColumn(ProgressColumn):
    """'eta 0:00:12' while a task with a known length runs; nothing before or after."""

    def render(self, task) -> Text:
        if task.total is None or task.finished or not task.completed:
            return Text('')
        left = task.time_remaining
        if left is None:
            return Text('eta -:--')
        m, s = divmod(int(left), 60)
        return Text(f'eta {m}:{s:02d}')


class ProgressHook(Hook):
    """Feeds a rich progress bar: iterations, latest loss and ETA of a Runner's training."""

    priority = 'VERY_LOW'

    def __init__(self, progress: Progress, task) -> None:
        self.progress = progress
        self.task = task

    def before_train(self, runner) -> None:
        self.progress.update(self.task, total=runner.max_iters, completed=runner.iter,
                             count=f'{runner.iter}/{runner.max_iters} it')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if isinstance(loss, torch.Tensor):
            loss = loss.item()
        fields = {} if loss is None else dict(loss=f'loss {float(loss):.4f}')
        self.progress.update(self.task, completed=runner.iter + 1,
                             count=f'{runner.iter + 1}/{runner.max_iters} it', **fields)

    def before_val(self, runner) -> None:
        self.progress.update(self.task, status='validating')

    def after_val(self, runner) -> None:
        self.progress.update(self.task, status='')


class Demo:
    """Runs the stages, one terminal line each, and collects the summary rows."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.verbose = args.verbose
        # the terminal as it is now (under a stage, sys.stdout is the stage's log file)
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        if not self.console.is_terminal:  # a pipe or a file: no 80-column wrapping
            self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=120)
        self.log_dir = osp.join(args.work_dir, 'logs')
        self.rows: List[dict] = []  # the summary table: dict(stage, result, seconds, where)
        self.num_stages = 0
        self.index = 0

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def stage(self, key: str, title: str, fn: Callable[[Optional[Callable]], dict]) -> dict:
        """Run ``fn(hook_factory)`` with its output sent to ``logs/<key>.log``.

        ``hook_factory(runner)`` registers the progress bar on a Runner. On an error, the tail
        of the stage's log is printed and the exception propagates (full traceback).
        """
        self.index += 1
        label = f'[{self.index}/{self.num_stages}] {title}'
        log_file = osp.join(self.log_dir, f'{key}.log')
        t0 = time.time()
        if self.verbose:
            self.say(f'\n{label} (log also in {rel(log_file)})')
            with stage_output(log_file, verbose=True):
                result = fn(None)
            result['seconds'] = round(time.time() - t0, 1)
            self.say(f'{label}: done in {result["seconds"]} s')
            result['log'] = log_file
            return result
        progress = Progress(
            TextColumn('{task.description:<22}'), BarColumn(bar_width=20),
            TextColumn('{task.fields[count]:>11}'), TextColumn('{task.fields[loss]:<11}'),
            EtaColumn(), TextColumn('{task.fields[status]}'), console=self.console,
            transient=False, refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)
        task = progress.add_task(label, total=None, count='', loss='', status='')

        def add_progress(runner: Runner) -> None:
            runner.register_hook(ProgressHook(progress, task), priority='VERY_LOW')

        progress.start()
        try:
            with stage_output(log_file, verbose=False):
                result = fn(add_progress)
        except BaseException:
            progress.update(task, status='FAILED')
            progress.stop()
            self.say(f'{label} failed after {time.time() - t0:.1f} s; last {LOG_TAIL} lines '
                     f'of {rel(log_file)}:')
            with open(log_file, errors='replace') as f:
                lines = f.read().splitlines()[-LOG_TAIL:]
            self.say('\n'.join('    ' + line for line in lines))
            raise
        result['seconds'] = round(time.time() - t0, 1)
        result['log'] = log_file
        if progress.tasks[0].total is None:  # no training loop: a full bar
            progress.update(task, total=1, completed=1)
        progress.update(task, status=f'done in {result["seconds"]} s')
        progress.stop()
        return result


def run(cfg: Config, add_progress: Optional[Callable] = None,
        keep: Optional[Callable[[Runner], dict]] = None) -> Dict[str, float]:
    """Train (the configs validate at the end) and return the last validation metrics."""
    before = set(DefaultScope._instance_dict)
    try:
        runner = Runner.from_cfg(cfg)
        if add_progress is not None:
            add_progress(runner)
        runner.train()
        scalars = runner.message_hub.log_scalars
        metrics = {k[len('val/'):]: float(v.current()) for k, v in scalars.items()
                   if k.startswith('val/')}
        loss = scalars.get('train/loss')
        first_last = (float(loss.data[0][0]), float(loss.data[0][-1])) if loss else (None, None)
        extra = keep(runner) if keep is not None else {}
        return dict(metrics, loss_first=first_last[0], loss_last=first_last[1],
                    log_dir=runner.log_dir, **extra)
    finally:  # a Runner leaves its toolbox scope as the default: restore mmpretrain's
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)


def make_tiny_teachers(cfg: Config, work_dir: str) -> List[str]:
    """MR-MAE needs frozen teacher checkpoints; the demo uses random tiny ones (stated).

    They are written under ``work_dir/tiny_teachers`` with the file names of the tiny config,
    whose paths point at the default work dir's copies.
    """
    from mmpretrain.registry import MODELS
    notes = []
    for name, teacher in cfg.model.teachers.items():
        path = osp.join(work_dir, 'tiny_teachers', osp.basename(teacher.checkpoint))
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not osp.isfile(path):
            torch.manual_seed(0)
            state = MODELS.build(teacher.backbone).state_dict()
            torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, path)
        teacher.checkpoint = path
        notes.append(f'teacher {name}: RANDOM tiny weights at {rel(path)} (demo only: real runs '
                     'load CLIP / DINO checkpoints)')
    return notes


def knn_result(runner: Runner) -> dict:
    hooks = [h for h in runner.hooks if type(h).__name__ == 'KNNEvalHook']
    if not hooks:
        return {}
    from pcae_mm.engine.hooks.knn_eval_hook import knn_summary
    return dict(knn={k: list(v) for k, v in knn_summary(hooks[0].history).items()})


def pretrain(args, imagenet: str, add_progress, notes: List[str]) -> dict:
    cfg = Config.fromfile(osp.join(ROOT, METHODS[args.method]))
    cfg.train_dataloader.dataset.data_root = imagenet
    cfg.train_cfg.max_epochs = args.epochs
    cfg.default_hooks.logger.interval = 4
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    picture = osp.join(args.work_dir, 'pictures', f'{args.method}.png')
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='MIMVisualizationHook', interval=args.epochs, num_images=4, out_file=picture)]
    if 'teachers' in cfg.model:
        notes += make_tiny_teachers(cfg, args.work_dir)
    work = osp.join(args.work_dir, f'{args.method}_pretrain')
    cfg = prepare_for_runner(cfg, work)
    result = run(cfg, add_progress)
    curves = osp.join(args.work_dir, 'pictures', f'{args.method}_curves.png')
    plot_curves(result['log_dir'], curves,
                title=f'tiny {args.method} pre-training (demo: tiny data, few iterations)')
    b = cfg.model.backbone
    return dict(result, checkpoint=osp.join(work, f'epoch_{args.epochs}.pth'), arch=dict(b.arch),
                img_size=b.img_size, picture=picture if osp.isfile(picture) else None,
                curves=curves, work_dir=work)


def learn_digits(method: str, work_dir: str, epochs: int, add_progress,
                 teacher: Optional[str] = None, save_to: Optional[str] = None) -> dict:
    """Pre-train ``method``'s tiny config on the digits; kNN at random init and after.

    ``teacher``: MR-MAE mimics this backbone checkpoint. ``save_to``: keep the trained backbone
    there (the MAE that MR-MAE mimics).
    """
    cfg = digits_cfg(method, work_dir, epochs=epochs)
    if teacher:
        use_pretrained_teacher(cfg, teacher)
    cfg = prepare_for_runner(cfg, work_dir)

    def keep(runner: Runner) -> dict:
        if save_to:
            save_backbone(runner.model, save_to)
        return knn_result(runner)

    return run(cfg, add_progress, keep=keep)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    quiet_model_building()
    demo = Demo(args)
    stages: List[str] = [s for s in BENCH if s not in args.skip]
    learning = 'knn' not in args.skip and args.knn_epochs > 0
    learning_stages = (2 if args.method == 'mr_mae' else 1) if learning else 0
    demo.num_stages = 2 + len(stages) + learning_stages
    demo.say(f'pcae-mm demo: {args.method}, tiny models on tiny data, CPU. One line per stage; '
             f'full logs in {rel(demo.log_dir)}/ (--verbose also prints them).')

    data: Dict[str, str] = {}

    def build_data(_):
        data['imagenet'] = make_tiny_imagenet(
            osp.join(args.data_root, 'imagenet'), num_classes=4,
            train_per_class=args.images_per_class, val_per_class=4, size=128)
        if 'mask_rcnn' in stages:
            data['coco'] = make_tiny_coco(osp.join(args.data_root, 'coco'), num_train=16,
                                          num_val=4)
        if 'upernet' in stages:
            data['ade20k'] = make_tiny_ade(osp.join(args.data_root, 'ade20k'), num_train=16,
                                           num_val=4)
        return {}

    data_res = demo.stage('datasets', 'datasets', build_data)
    demo.rows.append(dict(stage='datasets', result=', '.join(sorted(data)),
                          seconds=data_res['seconds'], where=rel(args.data_root)))

    notes: List[str] = []
    pre = demo.stage('pretrain', f'pre-train {args.method}',
                     lambda hook: pretrain(args, data['imagenet'], hook, notes))
    for note in notes:
        demo.say('  ' + note)
    summary = dict(method=args.method, config=METHODS[args.method], pretrain=pre, stages={},
                   rows=demo.rows)
    demo.rows.append(dict(stage='pre-train',
                          result=f"loss {pre['loss_first']:.4f} -> {pre['loss_last']:.4f}",
                          seconds=pre['seconds'], where=rel(pre['checkpoint'])))
    if learning:
        demo.rows += learning_check(demo, args)

    arch, img = pre['arch'], pre['img_size']
    ckpt = pre['checkpoint']
    builders: Dict[str, Callable[[], Config]] = {
        'classification': lambda: tiny_classification(
            Config.fromfile(osp.join(ROOT, BENCH['classification'])), ckpt, data['imagenet'],
            arch, img, num_classes=4, work_dir=osp.join(args.work_dir, 'finetune'),
            epochs=args.finetune_epochs),
        'mask_rcnn': lambda: tiny_mask_rcnn(
            Config.fromfile(osp.join(ROOT, BENCH['mask_rcnn'])), ckpt, data['coco'], arch,
            img, COCO_CLASSES, osp.join(args.work_dir, 'mask_rcnn'), iters=args.det_iters),
        'upernet': lambda: tiny_upernet(
            Config.fromfile(osp.join(ROOT, BENCH['upernet'])), ckpt, data['ade20k'], arch,
            img, osp.join(args.work_dir, 'upernet'), iters=args.seg_iters),
    }
    for name in stages:
        res = demo.stage(name, TITLES[name],
                         lambda hook, name=name: run(builders[name](), hook))
        summary['stages'][name] = res
        metrics = ', '.join(f'{k} {res[k]:.4g}' for k in METRICS[name] if k in res)
        loss = (f"loss {res['loss_first']:.3f} -> {res['loss_last']:.3f}; "
                if res.get('loss_first') is not None else '')
        demo.rows.append(dict(stage=name, result=loss + metrics, seconds=res['seconds'],
                              where=rel(osp.join(args.work_dir, {
                                  'classification': 'finetune'}.get(name, name)))))
    if pre.get('picture'):
        demo.rows.append(dict(stage='picture', result='labelled: mask, kept tokens, prediction',
                              where=rel(pre['picture'])))
    demo.rows.append(dict(stage='loss curve', result='pre-training loss vs iteration',
                          where=rel(pre['curves'])))
    demo.rows.append(dict(stage='logs', result='full mmengine log of each stage',
                          where=rel(demo.log_dir) + '/'))
    summary['seconds'] = round(time.time() - t0, 1)
    write_summary(summary, args.work_dir, demo.say)
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
    return rows + knn_rows(res.get('knn', {}), args.knn_epochs, res['seconds'], rel(work))


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
    main()
