"""The README's main job (tools/demo.py) in a reduced form: every stage runs, numbers come back."""
import json
import os.path as osp
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(autouse=True)
def restore_default_scope():
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


MAX_LINES = 150  # what the terminal shows without --verbose (the issue-17 bound)


@pytest.mark.needs_ops  # Mask R-CNN and UperNet
def test_demo_pipeline_reduced(tmp_path, capfd):
    from tools.demo import main
    work = str(tmp_path / 'work')
    summary = main(['--method', 'pcae', '--work-dir', work, '--data-root', str(tmp_path / 'data'),
                    '--epochs', '1', '--knn-epochs', '1', '--finetune-epochs', '1',
                    '--det-iters', '2', '--seg-iters', '2', '--images-per-class', '2'])
    out, err = capfd.readouterr()
    terminal = (out + err).splitlines()
    assert len(terminal) < MAX_LINES, '\n'.join(terminal)
    assert 'init_weights' not in out + err  # no per-parameter init dump
    assert osp.isfile(summary['pretrain']['checkpoint'])
    # the labelled picture and the loss plot at stable paths, named in the table
    assert summary['pretrain']['picture'] == osp.join(work, 'pictures', 'pcae.png')
    assert summary['pretrain']['curves'] == osp.join(work, 'pictures', 'pcae_curves.png')
    rows = {r['stage']: r for r in summary['rows']}
    for row in ('picture', 'loss curve'):
        where = rows[row]['where']
        assert osp.isfile(where if osp.isabs(where) else osp.join(ROOT, where)), row
        assert where in out
    from PIL import Image
    from pcae_mm.visualization import grid_layout
    header, ncols = grid_layout(np.asarray(Image.open(summary['pretrain']['picture'])), 4, 96)
    assert header > 20 and ncols == 6
    # every stage wrote its full log to a file, with a wall time in the summary
    for name in ('pretrain', 'classification', 'mask_rcnn', 'upernet'):
        res = summary['pretrain'] if name == 'pretrain' else summary['stages'][name]
        assert osp.getsize(res['log']) > 1000 and res['seconds'] > 0, name
    assert 'Epoch(train)' in open(summary['pretrain']['log']).read()
    # the learning check: kNN on held-out digits at random init and after pre-training on them
    assert re.fullmatch(r'digits top-1 \d+\.\d% random init -> \d+\.\d% after 1 epoch '
                        r'\([+-]\d+\.\d\)', rows['kNN student']['result'])
    assert rows['kNN student']['result'] in out
    # shown as soon as it is known, before the stages that may wait for mmcv's ops
    assert out.index(f"kNN student: {rows['kNN student']['result']}") < out.index('Mask R-CNN')
    assert osp.isfile(osp.join(work, 'logs', 'knn.log'))
    stages = summary['stages']
    assert 0 <= stages['classification']['accuracy/top1'] <= 100
    assert 0 <= stages['mask_rcnn']['coco/bbox_mAP'] <= 1
    assert 0 <= stages['mask_rcnn']['coco/segm_mAP'] <= 1
    assert 0 <= stages['upernet']['mIoU'] <= 100
    with open(osp.join(work, 'summary.json')) as f:
        assert json.load(f)['method'] == 'pcae'
    table = open(osp.join(work, 'summary.md')).read()
    for row in ('pre-train', 'classification', 'mask_rcnn', 'upernet', 'picture', 'loss curve'):
        assert f'| {row}' in table


def test_failed_stage_shows_its_log_tail_and_raises(tmp_path, capsys):
    from tools.demo import Demo, parse_args
    demo = Demo(parse_args(['--work-dir', str(tmp_path)]))
    demo.num_stages = 1

    def broken(_):
        print('the line that explains it')
        raise RuntimeError('boom')

    stdout = sys.stdout
    with pytest.raises(RuntimeError, match='boom'):
        demo.stage('broken', 'broken stage', broken)
    assert sys.stdout is stdout  # the terminal is back
    out = capsys.readouterr().out
    assert 'broken stage failed' in out and 'the line that explains it' in out
    assert 'the line that explains it' in open(tmp_path / 'logs' / 'broken.log').read()


@pytest.mark.parametrize('method', ['sdae', 'pr_mim', 'mae', 'mr_mae'])
def test_demo_pretrains_and_draws_every_method(tmp_path, method):
    """Every method's tiny config pre-trains in the demo and its reconstruct() output draws."""
    from tools.demo import main
    summary = main(['--method', method, '--work-dir', str(tmp_path / 'work'), '--data-root',
                    str(tmp_path / 'data'), '--epochs', '1', '--images-per-class', '2', '--skip',
                    'knn', 'classification', 'mask_rcnn', 'upernet'])
    assert osp.isfile(summary['pretrain']['checkpoint'])
    from PIL import Image
    from pcae_mm.visualization import grid_layout
    grid = np.asarray(Image.open(summary['pretrain']['picture']))
    header, _ = grid_layout(grid, 4, 96)  # a header row, then one row per image (4 visualised)
    assert header > 20
    assert osp.isfile(summary['pretrain']['curves'])


def test_demo_learning_check_shows_learning(tmp_path):
    """The main command's kNN row, at its default length, shows the paper's PCAE learning on
    real images (measured: 62.8% -> 74.6% after 40 epochs, seed 0; asserted: at least +6
    points)."""
    from tools.demo import main
    summary = main(['--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
                    '--epochs', '1', '--images-per-class', '2', '--skip', 'classification',
                    'mask_rcnn', 'upernet'])
    rows = {r['stage']: r for r in summary['rows']}
    row = rows['kNN student']['result']
    before, after = map(float, re.findall(r'(\d+\.\d)%', row))
    assert after >= before + 6, row
    # what produced it: the paper's PCAE (tiny config as shipped), its EMA at this run's length
    setting = rows['kNN setting']
    assert setting['where'] == 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'
    assert setting['result'].startswith("the paper's method; digits 32 px, patch 4; EMA teacher "
                                        'momentum 0.9'), setting
    assert 'horizon 10.65% of 840 updates' in setting['result'], setting


def test_demo_compare_shows_the_frontier_plot(tmp_path):
    """``--compare``: PCAE, SdAE, PR-MIM and MAE at equal training FLOPs on the digits, a row
    per method and the plot's path in the table (tools/analysis/compare_methods.py)."""
    from tools.demo import main
    summary = main(['--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
                    '--epochs', '1', '--images-per-class', '2', '--compare', '--compare-epochs',
                    '1', '--skip', 'knn', 'classification', 'mask_rcnn', 'upernet'])
    rows = {r['stage']: r for r in summary['rows']}
    for method in ('pcae', 'sdae', 'pr_mim', 'mae'):
        assert re.fullmatch(r'kNN \d+\.\d% -> \d+\.\d% at \d+\.\d\d TFLOPs \(\d+ epochs?, '
                            r'\d+\.\d\d GFLOPs / it\)', rows[f'compare {method}']['result'])
    plot = rows['compare plot']['where']
    assert plot.endswith('compare.png')
    assert osp.isfile(plot if osp.isabs(plot) else osp.join(ROOT, plot))
    table = open(tmp_path / 'work' / 'summary.md').read()
    assert plot in table


def test_demo_learning_check_of_mr_mae_pretrains_its_teacher_first(tmp_path):
    """MR-MAE's check mimics a tiny MAE pre-trained on the digits first (both rows shown)."""
    from tools.demo import main
    work = tmp_path / 'work'
    summary = main(['--method', 'mr_mae', '--work-dir', str(work), '--data-root',
                    str(tmp_path / 'data'), '--epochs', '1', '--knn-epochs', '1',
                    '--images-per-class', '2', '--skip', 'classification', 'mask_rcnn',
                    'upernet'])
    rows = [r['stage'] for r in summary['rows']]
    assert rows.index('kNN MAE teacher') < rows.index('kNN student')
    assert osp.isfile(work / 'mr_mae_digits' / 'mae_teacher' / 'backbone.pth')


@pytest.mark.parametrize('how', ['module', 'path'])
def test_demo_runs_as_a_module_and_by_path(how, tmp_path):
    """``python -m tools.demo`` (tools/run_demo.sh) from the repository root, and
    ``python tools/demo.py`` from anywhere, reach the same entry point."""
    cmd, cwd = ((['-m', 'tools.demo'], ROOT) if how == 'module' else
                ([osp.join(ROOT, 'tools', 'demo.py')], str(tmp_path)))
    proc = subprocess.run([sys.executable, *cmd, '--help'], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert '--method {mae,mr_mae,pcae,pr_mim,sdae}' in proc.stdout
    assert 'tools/demo_stages.py' in proc.stdout  # the module docstring: where the stages are


def fake_build(monkeypatch, tmp_path, state: str) -> None:
    """The demo's wait for mmcv's ops reads a fake set-up in ``state`` (not this env's); a
    ``building`` one finishes 1.5 s after the demo starts waiting."""
    import threading
    import tools.demo
    from tests.helpers.fake_setup import fake_ops_state
    from tools.setup_state import wait_for_mmcv_ops
    finish = fake_ops_state(str(tmp_path / 'venv'), state)

    def wait(progress):
        threading.Timer(1.5, finish).start()
        return wait_for_mmcv_ops(progress, venv=str(tmp_path / 'venv'), poll=0.1)

    monkeypatch.setattr(tools.demo, 'wait_for_mmcv_ops', wait)


@pytest.mark.needs_ops  # Mask R-CNN
def test_ops_stages_wait_for_the_background_build(tmp_path, capfd, monkeypatch):
    """A new machine: the set-up still compiles mmcv's ops when the demo reaches Mask R-CNN."""
    from tools.demo import main
    fake_build(monkeypatch, tmp_path, 'building')
    start = time.time()
    summary = main(['--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
                    '--epochs', '1', '--images-per-class', '2', '--det-iters', '2', '--skip',
                    'knn', 'classification', 'upernet'])
    out = capfd.readouterr().out
    assert '[3/3] Mask R-CNN: waiting for mmcv ops: compiled 3 of 77' in out, out
    assert osp.getmtime(tmp_path / 'venv' / '.pcae_mm_env') > start
    assert osp.getmtime(summary['stages']['mask_rcnn']['log']) > osp.getmtime(
        tmp_path / 'venv' / '.pcae_mm_env')
    assert 0 <= summary['stages']['mask_rcnn']['coco/bbox_mAP'] <= 1


def test_a_failed_build_still_shows_the_other_results(tmp_path, capfd, monkeypatch):
    """The background build failed: Mask R-CNN and UperNet say why and are not run; the table
    of the rest comes all the same, then the error (the command's status: 1)."""
    from tools.demo import main
    from tools.setup_state import MmcvOpsError
    fake_build(monkeypatch, tmp_path, 'failed')
    work = tmp_path / 'work'
    with pytest.raises(MmcvOpsError):
        main(['--work-dir', str(work), '--data-root', str(tmp_path / 'data'), '--epochs', '1',
              '--images-per-class', '2', '--skip', 'knn', 'classification'])
    out = capfd.readouterr().out
    assert 'Mask R-CNN: the mmcv ops build failed: building mmcv 2.1.0 failed' in out
    assert 'nms.cpp:1: error: boom' in out and 'To retry: bash tools/setup_env.sh' in out
    table = (work / 'summary.md').read_text()
    assert '| pre-train' in table and '| loss curve' in table
    for name in ('mask_rcnn', 'upernet'):
        assert re.search(rf"\| {name} +\| not run: mmcv's compiled ops are missing", table)
    assert not (work / 'logs' / 'mask_rcnn.log').exists()
