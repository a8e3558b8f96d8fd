"""Short runs learn: every method's tiny pre-training beats its own random init on kNN (issue 14).

Real labelled images (scikit-learn's digits, see ``tools/tiny_data/digits_knn.py``), fixed
seeds, one CPU thread, 40 epochs (840 iterations of batch 64; measured 4.5-5 min per method with
the four running in parallel on a loaded 2-core machine; one alone is faster, not measured). The
KNNEvalHook scores the student (mean of its final patch tokens) on the 497 held-out digits
against the 1300 training digits (weighted kNN, k=20, T=0.07) before the first step and after
the last.
Measured values (seed 0) are in MEASURED; the assertion is a margin well below the measured
gain so that a platform's floating-point noise cannot fail it, while a method that stops
learning (PCAE before issue 14: +0.3 points) does.

MR-MAE mimics a frozen teacher, which must be meaningful (CLIP / DINO cannot be downloaded
here): the MAE run of this module saves its backbone (78.1% kNN) and MR-MAE, from random init,
mimics it for MR_MAE_EPOCHS epochs (shared module fixture, so the suite pays only MR-MAE's run).
"""
import pytest

pytest.importorskip('sklearn')

from tools.tiny_data.digits_knn import pretrain_knn  # noqa: E402

EPOCHS = 40
MR_MAE_EPOCHS = 20
# method: (kNN top-1 at random init, after EPOCHS epochs, asserted minimum gain), in %,
# measured on x86-64 CPU, torch 2.14.1, seed 0 (1 query = 0.2 points); the margins are about
# half the measured gains.
MEASURED = {
    'mae': (62.0, 78.1, 8.0),
    'pr_mim': (67.4, 75.9, 4.0),
    'sdae': (57.1, 82.3, 12.0),
    'pcae': (57.1, 77.3, 10.0),  # PTR survivors at random (tiny config), see configs/pcae
    # MR_MAE_EPOCHS epochs mimicking the 40-epoch MAE above (smooth-L1, weight 1) + pixels.
    # Measured (40 MR-MAE epochs unless said; init 61.2): the student follows its teacher:
    # random tiny teachers 59.8 -> 48.9 (20 epochs, 32 px); MAE teacher of 10 epochs (57.1%
    # kNN) -> 65.0, of 20 epochs (68.8%) -> 71.8, of 40 epochs (78.1%) -> 78.5 (20 epochs:
    # 74.0); no mimic loss (weight 0, pixels only) -> 81.7.
    'mr_mae': (61.2, 74.0, 6.0),
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
    margin = MEASURED[method][2]
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
