"""Every pre-training config runs with the reliability hooks (issue 15)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

import pcae_mm  # noqa: F401
from mmpretrain.registry import HOOKS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRETRAIN = sorted(p for method in ('pcae', 'sdae', 'pr_mim', 'mr_mae')
                  for p in glob.glob(osp.join(ROOT, 'configs', method, '*.py')))


def test_there_are_pretraining_configs():
    assert len(PRETRAIN) >= 20
    assert any('tiny' in p for p in PRETRAIN)


@pytest.mark.parametrize('path', PRETRAIN, ids=[osp.basename(p) for p in PRETRAIN])
def test_config_has_the_reliability_hooks(path):
    hooks = Config.fromfile(path).default_hooks
    assert hooks.checkpoint.type == 'SafeCheckpointHook'
    assert hooks.divergence_guard.type == 'DivergenceGuardHook'
    assert hooks.exact_resume.type == 'ExactResumeHook'
    for h in ('checkpoint', 'divergence_guard', 'exact_resume'):
        assert HOOKS.get(hooks[h].type) is not None


DOWNSTREAM = sorted(glob.glob(osp.join(ROOT, 'configs', 'benchmarks', '*', '*.py')))


@pytest.mark.parametrize('path', DOWNSTREAM, ids=[osp.basename(p) for p in DOWNSTREAM])
def test_downstream_configs_have_the_divergence_guard(path):
    hooks = Config.fromfile(path).get('default_hooks') or {}
    assert hooks['divergence_guard']['type'].split('.')[-1] == 'DivergenceGuardHook'
    assert hooks['exact_resume']['type'].split('.')[-1] == 'ExactResumeHook'
