"""Compare pre-training methods at equal training compute: kNN top-1 vs counted FLOPs.

Each chosen method pre-trains its tiny config (as shipped: EMA horizon, PTR, losses) on one real
labelled set, the digits (``tools/tiny_data/digits_knn.py``: 1300 training images, 497 held-out
queries), for the same budget of training FLOPs. One training iteration's FLOPs (forward,
backward and the teacher's forward, whole batch) are counted at the aten level
(``tools/analysis/pcae_bench/flops.py``), so a method whose step is cheaper (PCAE's 11% of the
masked tokens decoded, PR-MIM's partial decoder) trains for more iterations. The
``KNNEvalHook`` scores the frozen student (weighted kNN, k=20, mean of the patch tokens) at
random init and at ``--evals`` points along the way; each point is placed at the training FLOPs
spent so far. Written to ``--out``:

* ``compare.json``: per method the config, whether it is the paper's method, the EMA schedule,
  FLOPs per iteration, epochs, iterations, every kNN point (FLOPs, top-1), wall time;
* ``compare.md``: the table and which method is ahead at the largest compute all runs reached
  (the "equal compute" column, linear interpolation between kNN points);
* ``compare.png``: kNN top-1 vs training TFLOPs, one line per method (the efficiency frontier).

Run from the repository root (the defaults: 4 methods, each for the FLOPs of 40 MAE epochs, 3.7
TFLOPs; about 8 minutes of one CPU thread, 4-5 with ``--jobs 2`` on two cores)::

    python -m tools.analysis.compare_methods --jobs 2
    python -m tools.analysis.compare_methods --methods pcae pcae_random_ptr mae \
        --budget-epochs 40 --out work_dirs/compare

The budget is ``--budget-tflops``, or ``--budget-epochs`` epochs of the ``--reference`` method
(default: 40 epochs of MAE, the learning tests' length; shorter budgets end in the early dip of
every method's kNN curve, see configs/pcae/README.md). Wall time is measured too, but not
matched: it depends on the machine's load; FLOPs do not. kNN evaluation is not counted as
training compute.
"""
import argparse
import json
import math
import os
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook

from tools.tiny_data.digits_knn import (IMG, PATCH, TRAIN_IMAGES, describe_run, digits_cfg,
                                        pretrain_knn)
from tools.tiny_data.configs import TINY_CONFIGS

DEFAULT_METHODS = ('pcae', 'sdae', 'pr_mim', 'mae')


def step_flops(method: str, batch_size: int = 64, **digits_kwargs) -> int:
    """Counted FLOPs of one training iteration of ``method``'s digits run (whole batch)."""
    import torch

    from tools.analysis.pcae_bench.builder import register_all
    from tools.analysis.pcae_bench.train_bench import TrainBench
    register_all()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = digits_cfg(method, tmp, batch_size=batch_size, **digits_kwargs)
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'KNNEvalHook']
        bench = TrainBench(method, cfg, batch_size, torch.device('cpu'),
                           img_size=cfg.model.backbone.img_size)
        part = getattr(bench.model, 'partial_reconstruction', None)
        if part is not None and hasattr(part, 'set_progress'):
            part.set_progress(0.5)  # PR-MIM: the progressive share at mid-run
        try:
            return bench.flops()
        finally:
            bench.close()


def iters_per_epoch(batch_size: int) -> int:
    """Training iterations per epoch on the digits (the last batch partial)."""
    return math.ceil(TRAIN_IMAGES / batch_size)


class _Record(Hook):
    """Keeps the kNN hook's history, the training wall time and what ran."""

    priority = 'LOWEST'

    def __init__(self, method: str) -> None:
        self.method = method

    def before_train(self, runner) -> None:
        self.start = time.perf_counter()

    def after_train(self, runner) -> None:
        from pcae_mm.engine.hooks.knn_eval_hook import KNNEvalHook
        self.seconds = time.perf_counter() - self.start
        self.history = next(h for h in runner.hooks if isinstance(h, KNNEvalHook)).history
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.run = describe_run(self.method, model)
        self.iters = runner.iter


def _pretrain(plan: Dict) -> Dict:
    """One method's digits run (a process of its own with ``--jobs``): its kNN history
    ``[(iteration, top-1), ...]``, what ran, iterations and training wall time."""
    import torch
    plan = dict(plan)
    method, interval = plan.pop('method'), plan.pop('interval')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread, in a worker or not: the same numbers with any --jobs
    record = _Record(method)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pretrain_knn(method, tmp, hook=dict(interval=interval), hooks=[record], **plan)
    finally:
        torch.set_num_threads(threads)
    return dict(history=[(step, acc['student_top1']) for step, acc in record.history],
                run=record.run, iterations=record.iters, seconds=record.seconds)


def interpolate(points: Sequence[Sequence[float]], x: float) -> float:
    """Linear interpolation of ``[(x, y), ...]`` (sorted by x) at ``x`` (clamped to the ends)."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / max(x1 - x0, 1e-12)
    return points[-1][1]


def compare(methods: Sequence[str] = DEFAULT_METHODS, out_dir: str = 'work_dirs/compare',
            budget_tflops: Optional[float] = None, budget_epochs: float = 40,
            reference: str = 'mae', evals: int = 4, img_size: int = IMG,
            patch_size: int = PATCH, seed: int = 0, batch_size: int = 64, jobs: int = 1,
            progress=print) -> Dict:
    """Run the comparison and write ``compare.{json,md,png}`` under ``out_dir``; returns the
    JSON record. ``jobs``: methods trained at once, each in its own process (every run uses one
    thread, so the results do not depend on ``jobs``; the wall times do). ``progress``: called with one line per
    step (None: silent)."""
    say = progress or (lambda *_: None)
    for m in methods:
        if m not in TINY_CONFIGS:
            raise KeyError(f'no tiny config for {m!r}: choose from {sorted(TINY_CONFIGS)}')
    if evals < 1:
        raise ValueError(f'--evals must be >= 1, got {evals}')
    if jobs < 1:
        raise ValueError(f'--jobs must be >= 1, got {jobs}')
    geometry = dict(img_size=img_size, patch_size=patch_size)
    ipe = iters_per_epoch(batch_size)
    flops = {}
    for m in dict.fromkeys(list(methods) + ([] if budget_tflops else [reference])):
        flops[m] = step_flops(m, batch_size=batch_size, **geometry)
        say(f'{m}: {flops[m] / 1e9:.2f} GFLOPs per training iteration (batch {batch_size})')
    if budget_tflops is None:
        if budget_epochs <= 0:
            raise ValueError(f'--budget-epochs must be > 0, got {budget_epochs}')
        budget = flops[reference] * ipe * budget_epochs
        budget_text = f'{budget_epochs:g} epochs of {reference} ({budget / 1e12:.2f} TFLOPs)'
    else:
        if budget_tflops <= 0:
            raise ValueError(f'--budget-tflops must be > 0, got {budget_tflops}')
        budget = budget_tflops * 1e12
        budget_text = f'{budget_tflops:g} TFLOPs'
    plans = []
    for m in methods:
        epochs = max(1, round(budget / (flops[m] * ipe)))
        interval = max(1, epochs // evals)
        say(f'{m}: {epochs} epochs ({epochs * ipe} iterations), kNN every {interval} epochs')
        plans.append(dict(method=m, epochs=epochs, interval=interval, seed=seed,
                          batch_size=batch_size, **geometry))
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        with ProcessPoolExecutor(min(jobs, len(plans)), mp_context=get_context('spawn')) as pool:
            runs = list(pool.map(_pretrain, plans))
    else:
        runs = [_pretrain(plan) for plan in plans]
    rows = []
    for plan, run in zip(plans, runs):
        m = plan['method']
        points = [(step * flops[m] / 1e12, acc) for step, acc in run['history']]
        rows.append(dict(method=m, **run['run'], gflops_per_iter=flops[m] / 1e9,
                         epochs=plan['epochs'], iterations=run['iterations'],
                         tflops=points[-1][0], knn_init=points[0][1], knn_final=points[-1][1],
                         points=points, seconds=run['seconds']))
        say(f'{m}: kNN {points[0][1]:.1f} -> {points[-1][1]:.1f} at {points[-1][0]:.2f} '
            f'TFLOPs in {run["seconds"]:.0f} s')
    common = min(r['tflops'] for r in rows)
    for r in rows:
        r['knn_at_common'] = interpolate(r['points'], common)
    best = max(rows, key=lambda r: r['knn_at_common'])
    result = dict(dataset='digits', img_size=img_size, patch_size=patch_size, seed=seed,
                  batch_size=batch_size, budget=budget_text, budget_tflops=budget / 1e12,
                  common_tflops=common, winner=best['method'], rows=rows,
                  load_average=os.getloadavg()[0])
    write_outputs(result, out_dir)
    return result


def _markdown(result: Dict, plot: str) -> str:
    r0 = result
    lines = [
        f"# kNN top-1 vs training compute: digits, {r0['img_size']} px, patch "
        f"{r0['patch_size']}, batch {r0['batch_size']}, seed {r0['seed']}",
        '',
        f"Budget: {r0['budget']} per method. kNN: weighted, k=20, mean of the student's patch "
        'tokens, 497 held-out digits against the 1300 training digits.',
        '',
        '| method | config | paper\'s method | EMA teacher | GFLOPs / iter | epochs | TFLOPs | '
        f"kNN init | kNN final | kNN at {r0['common_tflops']:.2f} TFLOPs | wall s |",
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in r0['rows']:
        lines.append(
            f"| {r['method']} | `{r['config']}` | {r['paper']} | {r['ema']} | "
            f"{r['gflops_per_iter']:.2f} | {r['epochs']} | {r['tflops']:.2f} | "
            f"{r['knn_init']:.1f} | {r['knn_final']:.1f} | {r['knn_at_common']:.1f} | "
            f"{r['seconds']:.0f} |")
    lines += ['', f"Ahead at equal compute ({r0['common_tflops']:.2f} TFLOPs): "
              f"**{r0['winner']}**. Plot: `{plot}`. Wall time (load average "
              f"{r0['load_average']:.1f}) includes the kNN evaluations.", '']
    return '\n'.join(lines)


def plot_frontier(result: Dict, path: str) -> str:
    """kNN top-1 vs training TFLOPs, one line per method; returns ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in result['rows']:
        xs, ys = zip(*r['points'])
        label = r['method'] + ('' if r['paper'] == 'yes' else f" ({r['paper']})")
        ax.plot(xs, ys, marker='o', label=label)
    ax.axvline(result['common_tflops'], color='grey', linestyle=':', linewidth=1)
    ax.set_xlabel('training compute (TFLOPs, counted)')
    ax.set_ylabel('kNN top-1 (%), held-out digits')
    ax.set_title(f"Equal-compute comparison: digits {result['img_size']} px, patch "
                 f"{result['patch_size']}, seed {result['seed']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_outputs(result: Dict, out_dir: str) -> Dict[str, str]:
    """``compare.json``, ``compare.md`` and ``compare.png`` under ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, f'compare.{k}') for k in ('json', 'md', 'png')}
    plot_frontier(result, paths['png'])
    result['files'] = paths
    with open(paths['json'], 'w') as f:
        json.dump(result, f, indent=1)
    with open(paths['md'], 'w') as f:
        f.write(_markdown(result, paths['png']))
    return paths


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                        help=f'tiny configs by name: {sorted(TINY_CONFIGS)}')
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument('--budget-tflops', type=float, help='training FLOPs per method')
    budget.add_argument('--budget-epochs', type=float, default=40,
                        help='budget = this many epochs of --reference (default 40)')
    parser.add_argument('--reference', default='mae', help='method whose epochs set the budget')
    parser.add_argument('--evals', type=int, default=4, help='kNN points after init per method')
    parser.add_argument('--img-size', type=int, default=IMG)
    parser.add_argument('--patch-size', type=int, default=PATCH)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=1,
                        help='methods trained at once, one process and thread each (2 on a '
                        '2-core machine halves the wall time; the results are the same)')
    parser.add_argument('--out', default='work_dirs/compare', help='output folder')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    result = compare(args.methods, args.out, args.budget_tflops, args.budget_epochs,
                     args.reference, args.evals, args.img_size, args.patch_size, args.seed,
                     args.batch_size, args.jobs)
    with open(result['files']['md']) as f:
        print(f.read())
    return result


if __name__ == '__main__':
    main()
