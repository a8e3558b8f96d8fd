"""Short runs learn: every method's tiny pre-training beats its own random init on kNN (issues 14
and 22).

Real labelled images (scikit-learn's digits, see ``tools/tiny_data/digits_knn.py``): 32 px,
patch 4 (64 patches, 48 masked; the paper's PCAE keeps 48 -> 24 -> 12 -> 6 by similarity in the
recipe's 3 stages), each method's tiny config AS SHIPPED (EMA horizon as a share of the run,
drop path), the recipes' RandomResizedCrop(0.2-1), fixed seed, one CPU thread, 40 epochs (840
iterations of batch 64). The KNNEvalHook scores the student (mean of its final patch tokens) on
the 497 held-out digits against the 1300 training digits (weighted kNN, k=20, T=0.07) before the
first step and after the last. CPU time of one 40-epoch run on one thread (load average about
1): PCAE 78 s, PR-MIM 80 s, MAE 100-115 s, SdAE 125 s; MR-MAE's 20 epochs about 60 s.
Measured values (seeds 0, 1, 2) are in MEASURED; the test runs seed 0 and asserts a margin set
below the smallest gain over the three seeds, so that a platform's floating-point noise cannot
fail it, while a method that stops learning (PCAE before issue 14: +0.3 points) does.

MR-MAE mimics a frozen teacher, which must be meaningful (CLIP / DINO cannot be downloaded
here): the MAE run of this module saves its backbone and MR-MAE, from random init, mimics it for
MR_MAE_EPOCHS epochs (shared module fixture, so the suite pays only MR-MAE's run).
"""
import pytest

pytest.importorskip('sklearn')

from tools.tiny_data.digits_knn import pretrain_knn  # noqa: E402

EPOCHS = 40
MR_MAE_EPOCHS = 20
# method: ({seed: (kNN top-1 at random init, after EPOCHS epochs)}, asserted minimum gain), in
# %, measured on x86-64 CPU, torch 2.14.1, one thread (1 query = 0.2 points); the margin is about
# 0.6 x the smallest gain of the three seeds. Commands, the random-survivor ablation (+19.7,
# +12.9, +17.9) and why PCAE gains less than MAE: configs/pcae/README.md ("Short runs").
MEASURED = {
    'mae': ({0: (56.7, 87.9), 1: (57.6, 84.9), 2: (63.2, 88.3)}, 15.0),
    'pr_mim': ({0: (57.7, 82.9), 1: (59.0, 83.9), 2: (57.7, 83.7)}, 15.0),
    'sdae': ({0: (62.8, 84.1), 1: (59.4, 76.3), 2: (61.0, 78.5)}, 10.0),
    # the paper's PCAE: similarity PTR in 3 stages, the recipe's EMA horizon (10.65% of the run)
    'pcae': ({0: (62.8, 74.6), 1: (59.4, 77.9), 2: (61.0, 81.3)}, 7.0),
    # MR_MAE_EPOCHS epochs mimicking the 40-epoch MAE above (87.9%; smooth-L1, weight 1) +
    # pixels, seed 0 (`python -m tools.tiny_data.digits_knn mr_mae --teacher-epochs 40
    # --epochs 20`); at 16 px (issue 14) the student followed its teacher's quality.
    'mr_mae': ({0: (61.4, 84.1)}, 10.0),
}


@pytest.fixture(scope='module')
def mae_teacher(tmp_path_factory):
    """The MAE run (its kNN result) and its saved backbone: MR-MAE's frozen teacher."""
    work_dir = tmp_path_factory.mktemp('mae_teacher')
    path = str(work_dir / 'mae_backbone.pth')
    return pretrain_knn('mae', str(work_dir), epochs=EPOCHS, save_to=path), path


def check_gain(method, res, epochs):
    print(f'{method}: kNN {res}')
    init, final = res['student_top1']
    margin = MEASURED[method][1]
    assert final >= init + margin, (
        f'{method}: kNN top-1 {init:.1f}% at random init -> {final:.1f}% after {epochs} epochs '
        f'(loss {res["loss"][0]:.3f} -> {res["loss"][1]:.3f}); expected a gain of at least '
        f'{margin} points')


@pytest.mark.parametrize('method', sorted(set(MEASURED) - {'mr_mae'}))
def test_short_pretraining_beats_random_init_on_knn(method, tmp_path, request):
    if method == 'mae':
        res = request.getfixturevalue('mae_teacher')[0]
    else:
        res = pretrain_knn(method, str(tmp_path), epochs=EPOCHS)
    check_gain(method, res, EPOCHS)


def test_mr_mae_mimicking_a_pretrained_teacher_beats_random_init_on_knn(mae_teacher, tmp_path):
    res = pretrain_knn('mr_mae', str(tmp_path), teacher=mae_teacher[1], epochs=MR_MAE_EPOCHS)
    check_gain('mr_mae', res, MR_MAE_EPOCHS)
