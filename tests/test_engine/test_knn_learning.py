"""Short runs learn: every method's tiny pre-training beats its own random init on kNN (issue 14).

Real labelled images (scikit-learn's digits, see ``knn_learning.py``), fixed seeds, one CPU
thread, 40 epochs (840 iterations of batch 64; measured 4.5-5 min per method with the four
running in parallel on a loaded 2-core machine; one alone is faster, not measured). The
KNNEvalHook scores the student (mean of its final patch tokens) on the 497 held-out digits
against the 1300 training digits (weighted kNN, k=20, T=0.07) before the first step and after
the last.
Measured values (seed 0) are in MEASURED; the assertion is a margin well below the measured
gain so that a platform's floating-point noise cannot fail it, while a method that stops
learning (PCAE before issue 14: +0.3 points) does.
"""
import pytest

pytest.importorskip('sklearn')

from knn_learning import pretrain_knn  # noqa: E402

EPOCHS = 40
# method: (kNN top-1 at random init, after EPOCHS epochs, asserted minimum gain), in %,
# measured on x86-64 CPU, torch 2.14.1, seed 0 (1 query = 0.2 points); the margins are about
# half the measured gains.
MEASURED = {
    'mae': (62.0, 78.1, 8.0),
    'pr_mim': (67.4, 75.9, 4.0),
    'sdae': (57.1, 82.3, 12.0),
    'pcae': (57.1, 77.3, 10.0),  # PTR survivors at random (tiny config), see configs/pcae
}
# MR-MAE mimics frozen CLIP / DINO teachers that cannot be downloaded here; with random tiny
# teachers (what the demo uses) it learns to imitate random features and its kNN falls
# (measured: 59.8 -> 48.9 in 20 epochs at 32 px), so it has no learning assertion: with real
# teachers it needs their checkpoints (configs/mr_mae/README.md).


@pytest.mark.parametrize('method', sorted(MEASURED))
def test_short_pretraining_beats_random_init_on_knn(method, tmp_path):
    res = pretrain_knn(method, str(tmp_path), epochs=EPOCHS)
    print(f'{method}: kNN {res}')
    init, final = res['student_top1']
    margin = MEASURED[method][2]
    assert final >= init + margin, (
        f'{method}: kNN top-1 {init:.1f}% at random init -> {final:.1f}% after {EPOCHS} epochs '
        f'(loss {res["loss"][0]:.3f} -> {res["loss"][1]:.3f}); expected a gain of at least '
        f'{margin} points')
