"""tools/test.py evaluates a fine-tuned classifier from a config file and a checkpoint."""
import os.path as osp
import pickle

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from tests.helpers import ROOT
from tests.helpers.downstream import TINY_ARCH, TINY_IMG, pretrain_pcae
from tools.tiny_data import tiny_classification

FINETUNE = osp.join(ROOT, 'configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py')


@pytest.fixture(autouse=True)
def restore_default_scope():
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


def test_test_tool_reports_accuracy_and_dumps_results(tmp_path, tiny_imagenet):
    from tools.test import main
    pre = pretrain_pcae(str(tmp_path / 'pre'), tiny_imagenet)
    cfg = tiny_classification(Config.fromfile(FINETUNE), pre, tiny_imagenet, TINY_ARCH, TINY_IMG,
                              num_classes=4, work_dir=str(tmp_path / 'ft'))
    Runner.from_cfg(cfg).train()
    cfg_file = str(tmp_path / 'ft_config.py')
    cfg.dump(cfg_file)
    out = str(tmp_path / 'results.pkl')
    metrics = main([cfg_file, osp.join(str(tmp_path / 'ft'), 'epoch_1.pth'), '--work-dir',
                    str(tmp_path / 'test'), '--out', out])
    assert 0 <= metrics['accuracy/top1'] <= 100
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 8  # one prediction per validation image


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from tools.test import main
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        main([FINETUNE, str(tmp_path / 'nope.pth')])
