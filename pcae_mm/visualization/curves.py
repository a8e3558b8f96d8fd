"""Loss (and kNN accuracy) against iteration, from an mmengine run's ``scalars.json``.

mmengine's ``LocalVisBackend`` writes one JSON object per line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: training lines carry ``loss`` (and its parts
``loss_*``), ``iter`` and ``step`` (= iterations done); ``KNNEvalHook`` lines carry
``knn/<net>_top<k>`` with ``step`` = iterations done (0 = before training).
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

Series = Dict[str, Tuple[List[float], List[float]]]


def find_scalars(path: str) -> str:
    """``path`` itself if it is a file, else the newest ``**/vis_data/scalars.json`` under it."""
    if osp.isfile(path):
        return path
    found = glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'), recursive=True)
    if not found:
        raise FileNotFoundError(f'no vis_data/scalars.json under {path!r} (is it an mmengine '
                                'work dir with the LocalVisBackend?)')
    return max(found, key=osp.getmtime)


def load_scalars(path: str) -> List[dict]:
    """Records of a ``scalars.json`` (JSON lines; a work dir finds its newest one)."""
    records = []
    with open(find_scalars(path)) as f:
        for line in f:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    return records


def _is_loss(key: str) -> bool:
    return key == 'loss' or key.startswith('loss_') or key.endswith('/loss')


def _is_knn(key: str) -> bool:
    return 'knn' in key.lower() and key.endswith('top1')  # top-5 of a few classes is ~100


def collect_series(records: Sequence[dict],
                   extra_keys: Sequence[str] = ()) -> Tuple[Series, Series]:
    """``(losses, accuracies)``: ``{key: (iterations, values)}`` in file order.

    Losses are ``loss`` and ``loss_*``; accuracies are the kNN top-1 keys (``knn/..._top1``,
    not the running best) and ``extra_keys``. The x value is ``iter`` where a line has it, else
    ``step``.
    """
    losses: Series = {}
    accs: Series = {}
    for rec in records:
        x = rec.get('iter', rec.get('step'))
        if x is None:
            continue
        for key, value in rec.items():
            if not isinstance(value, (int, float)) or key in ('iter', 'step', 'epoch'):
                continue
            target = losses if _is_loss(key) else accs if (
                _is_knn(key) or key in extra_keys) else None
            if target is not None:
                xs, ys = target.setdefault(key, ([], []))
                xs.append(float(x))
                ys.append(float(value))
    return losses, accs


def plot_curves(source: Union[str, Sequence[dict]], out_file: str, title: Optional[str] = None,
                extra_keys: Sequence[str] = ()) -> str:
    """Draw loss (left axis, log scale when it spans > 10x) and kNN accuracy (right axis, %)
    against iteration; write a PNG.

    Args:
        source (str | list[dict]): A ``scalars.json``, a work dir holding one, or its records.
        out_file (str): PNG path (its folder is created).
        title (str, optional): Figure title.
        extra_keys (list[str]): More accuracy-like keys to draw on the right axis.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = load_scalars(source) if isinstance(source, str) else list(source)
    losses, accs = collect_series(records, extra_keys)
    if not losses and not accs:
        raise ValueError('no loss or kNN accuracy scalars to plot')
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    handles = []
    for i, (key, (xs, ys)) in enumerate(losses.items()):
        main = key == 'loss'
        handles += ax.plot(xs, ys, lw=2 if main else 1, alpha=1 if main else .7, color=f'C{i}',
                           label=key, marker='.' if len(xs) < 30 else None)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ys_all = [y for _, ys in losses.values() for y in ys if y > 0]
    if ys_all and max(ys_all) > 10 * min(ys_all):
        ax.set_yscale('log')
    ax.grid(alpha=.3)
    if accs:
        ax2 = ax.twinx()
        for i, (key, (xs, ys)) in enumerate(accs.items(), start=len(losses)):
            handles += ax2.plot(xs, ys, ls='--', marker='os^D'[i % 4], ms=9 - 2 * (i % 4),
                                color=f'C{i % 10}', label=key)
        ax2.set_ylabel('kNN accuracy (%)')
        ax2.set_ylim(0, 100)
    ax.legend(handles=handles, loc='best', fontsize=8, framealpha=.8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if osp.dirname(out_file):
        os.makedirs(osp.dirname(out_file), exist_ok=True)
    fig.savefig(out_file)
    plt.close(fig)
    return out_file
