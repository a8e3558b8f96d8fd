"""tools/analysis/compare_methods.py at a tiny size, run as a user runs it (its ``main`` with
command-line arguments): every method trains for the same counted FLOPs (to within the one-epoch
rounding), kNN is scored along the way, and the table, JSON and plot are well formed. No
accuracy is asserted (the tool reports what it measures; the learning tests assert gains)."""
import json
import os.path as osp

import pytest

pytest.importorskip('sklearn')
pytest.importorskip('matplotlib')

from tools.analysis import compare_methods  # noqa: E402
from tools.tiny_data.digits_knn import describe_run  # noqa: E402


@pytest.fixture(scope='module')
def result(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('compare'))
    res = compare_methods.main([
        '--methods', 'pcae', 'mae', '--budget-epochs', '2', '--reference', 'mae', '--evals',
        '2', '--img-size', '16', '--patch-size', '4', '--jobs', '2', '--out', out])
    return res, out


def test_outputs_exist_and_agree(result):
    res, out = result
    for ext in ('json', 'md', 'png'):
        assert osp.isfile(osp.join(out, f'compare.{ext}')), ext
    with open(osp.join(out, 'compare.json')) as f:
        saved = json.load(f)
    assert [r['method'] for r in saved['rows']] == ['pcae', 'mae']
    assert saved['winner'] in ('pcae', 'mae')
    md = open(osp.join(out, 'compare.md')).read()
    assert md.count('\n| pcae |') == 1 and md.count('\n| mae |') == 1
    assert f"**{saved['winner']}**" in md and osp.join(out, 'compare.png') in md
    import matplotlib.image as mpimg
    img = mpimg.imread(osp.join(out, 'compare.png'))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_equal_compute_and_knn_along_the_way(result):
    res, _ = result
    budget = res['budget_tflops']
    assert res['budget'].startswith('2 epochs of mae')
    ipe = compare_methods.iters_per_epoch(res['batch_size'])
    pcae, mae = res['rows']
    assert pcae['gflops_per_iter'] < mae['gflops_per_iter']  # PCAE decodes 1 of 12 masked
    assert pcae['epochs'] >= mae['epochs'] == 2
    for r in res['rows']:
        epoch_tflops = r['gflops_per_iter'] * ipe / 1e3
        assert abs(r['tflops'] - budget) <= epoch_tflops / 2 + 1e-9, r['method']
        assert r['iterations'] == r['epochs'] * ipe
        xs = [x for x, _ in r['points']]
        assert xs[0] == 0 and xs == sorted(xs) and len(xs) >= 3  # init + 2 evaluations
        assert all(0 <= y <= 100 for _, y in r['points'])
        assert r['knn_init'] == r['points'][0][1] and r['knn_final'] == r['points'][-1][1]
        assert r['seconds'] > 0
    assert res['common_tflops'] == min(r['tflops'] for r in res['rows'])


def test_the_results_do_not_depend_on_the_jobs(result, tmp_path):
    """--jobs 2 ran each method in a process of its own: the same kNN points as in-process."""
    res, _ = result
    alone = compare_methods.compare(['pcae'], str(tmp_path), budget_tflops=res['budget_tflops'],
                                    evals=2, img_size=16, patch_size=4, progress=None)
    assert alone['rows'][0]['points'] == res['rows'][0]['points']


def test_rows_name_what_produced_them(result):
    res, _ = result
    pcae, mae = res['rows']
    assert pcae['config'].endswith('pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py')
    assert pcae['paper'] == 'yes' and 'horizon 10.65%' in pcae['ema']
    assert mae['ema'] == '-'


def test_the_ablation_is_labelled_as_one():
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import pcae_mm  # noqa: F401
    from tests.helpers import tiny_config
    model = MODELS.build(Config.fromfile(tiny_config('pcae_random_ptr')).model)
    run = describe_run('pcae_random_ptr', model)
    assert run['paper'] == 'no: PTR survivors at random, not by similarity'
    assert describe_run('pcae', model, {'teacher.horizon': 0.5})['paper'] == (
        "no: teacher.horizon=0.5")


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="no tiny config for 'pcea'"):
        compare_methods.compare(['pcea'], str(tmp_path))
    with pytest.raises(ValueError, match='--evals must be >= 1'):
        compare_methods.compare(['mae'], str(tmp_path), evals=0)
    with pytest.raises(ValueError, match='--jobs must be >= 1'):
        compare_methods.compare(['mae'], str(tmp_path), jobs=0)
    with pytest.raises(SystemExit):
        compare_methods.parse_args(['--budget-tflops', '1', '--budget-epochs', '2'])
