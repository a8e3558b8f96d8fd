"""The README's main job (tools/demo.py) in a reduced form: every stage runs, numbers come back."""
import json
import os.path as osp

import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def restore_default_scope():
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


def test_demo_pipeline_reduced(tmp_path):
    from tools.demo import main
    work = str(tmp_path / 'work')
    summary = main(['--method', 'pcae', '--work-dir', work, '--data-root', str(tmp_path / 'data'),
                    '--epochs', '1', '--finetune-epochs', '1', '--det-iters', '2',
                    '--seg-iters', '2', '--images-per-class', '2'])
    assert osp.isfile(summary['pretrain']['checkpoint'])
    assert summary['pretrain']['picture'] and osp.isfile(summary['pretrain']['picture'])
    stages = summary['stages']
    assert 0 <= stages['classification']['accuracy/top1'] <= 100
    assert 0 <= stages['mask_rcnn']['coco/bbox_mAP'] <= 1
    assert 0 <= stages['mask_rcnn']['coco/segm_mAP'] <= 1
    assert 0 <= stages['upernet']['mIoU'] <= 100
    with open(osp.join(work, 'summary.json')) as f:
        assert json.load(f)['method'] == 'pcae'
    table = open(osp.join(work, 'summary.md')).read()
    for row in ('pre-train', 'classification', 'mask_rcnn', 'upernet', 'picture'):
        assert f'| {row}' in table


@pytest.mark.parametrize('method', ['sdae', 'pr_mim', 'mae', 'mr_mae'])
def test_demo_pretrains_and_draws_every_method(tmp_path, method):
    """Every method's tiny config pre-trains in the demo and its reconstruct() output draws."""
    from tools.demo import main
    summary = main(['--method', method, '--work-dir', str(tmp_path / 'work'), '--data-root',
                    str(tmp_path / 'data'), '--epochs', '1', '--images-per-class', '2', '--skip',
                    'classification', 'mask_rcnn', 'upernet'])
    assert osp.isfile(summary['pretrain']['checkpoint'])
    from PIL import Image
    grid = Image.open(summary['pretrain']['picture'])
    assert grid.size[1] == 4 * 96  # one row per image (4 visualised)
