"""tools/analysis/target_leak.py: the measures of what a feature-target loss needs from the image
(configs/pcae/README.md, "Short runs"), on a 1-epoch tiny PCAE run on the digits."""
import math

import pytest

pytest.importorskip('sklearn')

from tools.analysis import target_leak  # noqa: E402
from tools.tiny_data.digits_knn import pretrain_knn  # noqa: E402

SMALL = dict(epochs=1, img_size=16, patch_size=4)  # 12 masked -> 6 -> 3 -> 1 survivor


@pytest.fixture(scope='module')
def probed(tmp_path_factory):
    return target_leak.run('pcae', work_dir=str(tmp_path_factory.mktemp('leak')), **SMALL)


def test_measures_at_init_and_after(probed):
    for when in ('init', 'final'):
        r = probed[when]
        assert r['targets_per_image'] == 1
        for key in ('loss', 'loss_const', 'loss_pos'):
            assert 0 <= r[key] <= 2, (when, key)  # 1 - cos
        assert r['content_use'] > 0 and 0 < r['position_entropy'] <= 1 + 1e-6
        assert 0 <= r['selected_ink'] <= 1 and 0 <= r['masked_ink'] <= 1
    init, final = probed['init'], probed['final']
    # step 0: the teacher is the student's copy, and the decoder has not learnt to read it yet
    assert init['teacher_student'] == 0
    assert init['content_use'] == pytest.approx(1.0, abs=0.05)
    assert final['teacher_drift'] > 0 and final['student_drift'] > 0
    # the same masks for every run: the masked patches' ink share does not change
    assert final['masked_ink'] == init['masked_ink']


def test_the_probe_does_not_change_the_run_it_measures(probed, tmp_path):
    plain = pretrain_knn('pcae', str(tmp_path), **SMALL)
    assert plain['student_top1'] == pytest.approx(probed['knn']['student_top1'], abs=1e-9)
    assert plain['loss'] == pytest.approx(probed['knn']['loss'], abs=1e-9)


def test_position_entropy():
    import torch
    assert target_leak.position_entropy(torch.arange(16).reshape(4, 4), 16) == pytest.approx(1)
    assert target_leak.position_entropy(torch.full((4, 4), 3), 16) == 0
    two = target_leak.position_entropy(torch.tensor([[0, 1], [1, 0]]), 16)
    assert two == pytest.approx(math.log(2) / math.log(16))
