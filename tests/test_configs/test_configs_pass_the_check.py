"""Every shipped config passes the check tools/train.py and tools/test.py run before any work
(pcae_mm.utils.config_check): no unknown key, no impossible value, a usable FSDP strategy."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import pcae_mm  # noqa: F401
from pcae_mm.engine.fsdp import check_strategy_config
from pcae_mm.utils.config_check import check_config
from tests.helpers import ROOT

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_shipped_config_passes_the_check(path):
    cfg = Config.fromfile(path)
    check_config(cfg, path, set(cfg.keys()), {})
    check_strategy_config(cfg)


def test_the_check_sees_every_config_part():
    """Sharpness: one typo per part of a full recipe is found (the check is not vacuous on the
    configs above)."""
    path = osp.join(ROOT, 'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    cfg = Config.fromfile(path)
    keys = set(cfg.keys())
    typos = {'model.backbone.archh': 1, 'model.neck.deph': 1, 'model.head.cos_dimm': 1,
             'model.teacher.end_momentm': 1, 'custom_hooks.0.foo': 1,
             'default_hooks.checkpoint.intervall': 1, 'train_dataloader.dataset.splt': 1,
             'optim_wrapper.loss_scal': 1, 'param_scheduler.0.begn': 1}
    cfg.merge_from_dict(typos)
    with pytest.raises(ValueError) as err:
        check_config(cfg, path, keys, typos)
    assert f'{len(typos)} problems' in str(err.value)
