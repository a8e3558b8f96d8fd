"""Issue 16: the full recipes carry the authors' decoder drop path, and the official SdAE config
gives the authors' weight decay to the cls and mask tokens."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def recipes(method):
    return sorted(p for p in glob.glob(osp.join(ROOT, 'configs', method, '*_in1k.py'))
                  if 'tiny' not in osp.basename(p))


@pytest.mark.parametrize('path', recipes('pcae'), ids=osp.basename)
def test_pcae_recipes_use_the_authors_constant_decoder_drop_path(path):
    model = Config.fromfile(path).model
    assert model.neck.drop_path_rate == 0.25  # caddyless/PCAE: every decoder block
    assert model.backbone.drop_path_rate == 0.25  # the encoder's linear ramp end


@pytest.mark.parametrize(
    'path', recipes('sdae') + recipes('pr_mim') + recipes('mr_mae'), ids=osp.basename)
def test_other_recipes_keep_their_authors_decoder_without_drop_path(path):
    model = Config.fromfile(path).model
    assert model.neck.get('drop_path_rate', 0.) == 0.


def test_official_sdae_decays_cls_and_mask_tokens():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import pcae_mm  # noqa: F401
    init_default_scope('mmpretrain')
    tiny = Config.fromfile(
        osp.join(ROOT, 'configs/sdae/sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'))
    model = MODELS.build(tiny.model)

    def decay_of(cfg_name):
        cfg = Config.fromfile(osp.join(ROOT, 'configs/sdae', cfg_name))
        ow = cfg.optim_wrapper.to_dict()
        ow.update(type='OptimWrapper')  # AmpOptimWrapper needs a GPU
        ow.pop('loss_scale', None)
        wrapper = build_optim_wrapper(model, ow)
        by_id = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
                 for p in g['params']}
        return {n: by_id[id(p)] for n, p in model.named_parameters() if id(p) in by_id}

    ours = decay_of('sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py')
    theirs = decay_of('sdae_vit-base-p16-official_8xb96-amp-coslr-300e_in1k.py')
    for name in ('backbone.cls_token', 'neck.mask_token'):
        assert ours[name] == 0. and theirs[name] == pytest.approx(0.04), name
    assert not any(n.startswith('teacher.') for n in theirs)  # the teacher is never optimised
    for n, wd in theirs.items():
        if n not in ('backbone.cls_token', 'neck.mask_token'):
            assert wd == ours[n], n
