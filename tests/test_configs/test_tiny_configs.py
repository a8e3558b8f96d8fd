"""The one list of tiny CPU configs (tools/tiny_data/configs.py) names every tiny config on disk,
and every tiny config takes the shared CPU settings of configs/_base_/tiny_cpu.py."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from tests.helpers import ROOT, TINY_CONFIGS, tiny_config
from tools.tiny_data.configs import DEMO_METHODS

ON_DISK = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', '*tiny*.py'))
    if osp.basename(osp.dirname(p)) != '_base_')


def test_the_list_is_every_tiny_config_on_disk():
    assert sorted(TINY_CONFIGS.values()) == ON_DISK
    assert set(DEMO_METHODS) <= set(TINY_CONFIGS)
    assert tiny_config('pr_mim') == osp.join(ROOT, TINY_CONFIGS['pr_mim'])
    with pytest.raises(KeyError, match=r"no tiny config for 'pr-mim'.*'pr_mim'"):
        tiny_config('pr-mim')


@pytest.mark.parametrize('method', sorted(TINY_CONFIGS))
def test_every_tiny_config_takes_the_shared_cpu_settings(method):
    cfg = Config.fromfile(tiny_config(method), import_custom_modules=False)
    base = Config.fromfile(osp.join(ROOT, 'configs/_base_/tiny_cpu.py'))
    loader = cfg.train_dataloader
    assert loader.batch_size == 8 and loader.num_workers == 0
    assert loader.dataset.data_root == cfg.data_root == base.tiny_data_root
    assert loader.dataset.pipeline == base.tiny_train_pipeline
    assert cfg.optim_wrapper.type == 'OptimWrapper'  # fp32 (the recipes: AmpOptimWrapper)
    assert cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.model.backbone.img_size == base.tiny_img_size
    assert cfg.train_cfg.max_epochs == cfg.param_scheduler[-1].end
    # the SdAE family keeps its recipe's lr, MR-MAE its 2 epochs; the others take the base's
    if method not in ('sdae', 'pr_mim_sdae'):
        assert cfg.optim_wrapper.optimizer == base.tiny_optim_wrapper.optimizer
    if not method.startswith('mr_'):
        assert cfg.param_scheduler == base.tiny_param_scheduler
