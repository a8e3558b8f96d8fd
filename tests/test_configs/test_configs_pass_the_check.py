"""Every shipped config passes the check tools/train.py and tools/test.py run before any work
(pcae_mm.utils.config_check): no unknown key, no impossible value, a usable FSDP strategy."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

import pcae_mm  # noqa: F401
from pcae_mm.engine.fsdp import check_strategy_config
from pcae_mm.utils.config_check import check_config
from tests.helpers import ROOT
from tests.ops_split import HIDE_ENV, NO_OPS_DIR, SCAN

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
#: mmdet / mmseg configs: checking their types imports those toolboxes' models (compiled ops)
PARAMS = [pytest.param(p, id=osp.relpath(p, ROOT),
                       marks=[pytest.mark.needs_ops] if SCAN.config_needs(p) else [])
          for p in CONFIGS]


@pytest.mark.parametrize('path', PARAMS)
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


def test_a_toolbox_without_its_ops_is_named_not_every_type_unknown():
    """mmcv without compiled ops (mmcv-lite, a first set-up still building them): an mmdet
    config's check says mmdet's modules do not import and how to get the ops, instead of
    calling each of its 30-odd types unknown."""
    path = osp.join(ROOT, 'configs/benchmarks/mask_rcnn/'
                    'mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py')
    code = ('import pcae_mm\n'
            'from mmengine.config import Config\n'
            'from pcae_mm.utils.config_check import check_config\n'
            f'cfg = Config.fromfile({path!r})\n'
            f'check_config(cfg, {path!r}, set(cfg.keys()), {{}})\n')
    env = dict(os.environ, **{HIDE_ENV: '1'})
    env['PYTHONPATH'] = os.pathsep.join([NO_OPS_DIR, ROOT, env.get('PYTHONPATH', '')])
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('pcae_mm.utils.config_check.ScopeImportError: cannot check the '
                           "config: mmdet's"), proc.stderr
    assert 'mmcv._ext' in last and 'tools/setup_env.sh --wait' in last
    assert 'unknown type' not in proc.stderr
    # mmcv-lite's import-time warning is silenced by pcae_mm (it names nothing we use)
    assert 'MultiScaleDeformableAttention' not in proc.stderr
