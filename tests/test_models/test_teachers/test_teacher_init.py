"""EMA teacher step-0 state (issue 16): a copy of the student, or the SdAE authors' own random
init that only the EMA pulls toward the student."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from mmpretrain.registry import MODELS
from torch import nn

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers import EMATeacher
from pcae_mm.models.teachers.ema import random_vit_init_
from tests.helpers import tiny_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
OFFICIAL_SDAE = osp.join(ROOT,
                         'configs/sdae/sdae_vit-base-p16-official_8xb96-amp-coslr-300e_in1k.py')


def tiny_backbone():
    vit = MODELS.build(
        dict(type='MIMViT', arch=dict(embed_dims=64, num_layers=2, num_heads=4,
                                      feedforward_channels=128),
             img_size=96, patch_size=16, mask_ratio=0.75))
    vit.init_weights()
    return vit


def assert_ema_step(teacher, t0, student_params, m):
    """teacher == m * t0 + (1 - m) * student for every parameter: bit for bit as float32
    ``t0 * m + (1 - m) * s`` with one rounding per operation, and within float32 resolution
    of the float64 formula."""
    for k, p in teacher.module.named_parameters():
        s = student_params[k]
        assert torch.equal(p, t0[k].mul(m).add(s, alpha=1 - m)), k
        exact = (m * t0[k].double() + (1 - m) * s.double()).float()
        torch.testing.assert_close(p, exact, rtol=3e-7, atol=1e-8, msg=k)


def starts_equal(name, module):
    """LayerNorm (1 / 0) and zero biases start the same in both inits."""
    if name.endswith('.bias'):
        return True
    return '.' in name and isinstance(module.get_submodule(name.rsplit('.', 1)[0]),
                                      nn.LayerNorm)


def test_random_init_is_the_authors_timm_vit_init():
    torch.manual_seed(0)
    student = tiny_backbone()
    teacher = EMATeacher(student, init='random')
    teacher.reset(student)
    t = teacher.module
    sincos = build_2d_sincos_position_embedding(6, 64, cls_token=True)
    assert torch.equal(student.pos_embed, sincos)  # the student keeps its fixed sin-cos
    # its own learned-style position embedding: trunc-normal(0.02), nothing like sin-cos
    assert t.pos_embed.shape == sincos.shape
    assert 0.015 < t.pos_embed.std() < 0.025 and t.pos_embed.abs().max() < 0.2
    assert 0.005 < t.cls_token.std() < 0.04  # 64 values only
    for name, m in t.named_modules():
        if isinstance(m, nn.Linear):
            assert 0.015 < m.weight.std() < 0.025, name
            assert m.bias is None or not m.bias.any(), name
        elif isinstance(m, nn.LayerNorm):
            assert (m.weight == 1).all() and not m.bias.any(), name


def test_random_teacher_differs_at_step_0_and_the_ema_pulls_it_at_the_stated_rate():
    torch.manual_seed(0)
    student = tiny_backbone()
    teacher = EMATeacher(student, momentum=0.96, end_momentum=0.99, update_by='epoch',
                         init='random')
    teacher.reset(student)
    s = dict(student.named_parameters())
    t0 = {k: p.detach().clone() for k, p in teacher.module.named_parameters()}
    assert set(t0) == set(s)
    for k, v in t0.items():
        if starts_equal(k, student):
            continue
        assert not torch.allclose(v, s[k]), k
    teacher.set_schedule(300)
    m = teacher.momentum_at(0)
    assert m == pytest.approx(0.96)
    teacher.update_parameters(student)
    # every parameter, the position embedding included, moves by exactly (1 - m)
    assert_ema_step(teacher, t0, s, m)
    # after the first update the momentum follows the cosine 0.96 -> 0.99 by epoch
    assert teacher.momentum_at(150) == pytest.approx(0.975)


def test_student_init_is_still_a_copy_and_bad_init_raises():
    student = tiny_backbone()
    teacher = EMATeacher(student)
    with torch.no_grad():
        for p in teacher.module.parameters():
            p.add_(1.)
    teacher.reset(student)
    for (k, a), b in zip(student.state_dict().items(), teacher.module.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match='init'):
        EMATeacher(student, init='pretrained')


def test_random_init_refuses_unknown_parameters():
    class WithGamma(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.gamma = nn.Parameter(torch.ones(2))

    with pytest.raises(ValueError, match='gamma'):
        random_vit_init_(WithGamma())


def build_sdae(**teacher):
    cfg = Config.fromfile(tiny_config('sdae'))
    cfg.merge_from_dict({'model.teacher': teacher})
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_sdae_random_teacher_through_the_algorithm():
    torch.manual_seed(0)
    model = build_sdae(init='random')
    s = dict(model.backbone.named_parameters())
    t0 = {k: p.detach().clone() for k, p in model.teacher.module.named_parameters()}
    assert not torch.allclose(t0['pos_embed'], s['pos_embed'])
    assert not torch.allclose(t0['layers.0.attn.qkv.weight'], s['layers.0.attn.qkv.weight'])
    model.teacher.set_schedule(4)
    m = model.teacher.momentum_at(0)
    model.momentum_update()
    assert_ema_step(model.teacher, t0, s, m)
    # the default stays the copy
    copy = build_sdae()
    for k, v in copy.teacher.module.state_dict().items():
        assert torch.equal(copy.backbone.state_dict()[k], v), k


def test_official_sdae_config():
    cfg = Config.fromfile(OFFICIAL_SDAE)
    assert cfg.model.teacher.init == 'random'
    assert (cfg.model.teacher.momentum, cfg.model.teacher.end_momentum,
            cfg.model.teacher.update_by) == (0.96, 0.99, 'epoch')
    assert (cfg.model.head.cos_dim, cfg.model.head.num_folds, cfg.model.num_folds) == (1, 3, 3)
    assert cfg.model.neck.get('drop_path_rate', 0.) == 0.  # SdAE's decoder has none
    assert cfg.model.backbone.drop_path_rate == 0.25
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert keys['cls_token'].decay_mult == 1. and keys['mask_token'].decay_mult == 1.
    assert keys['ln'].decay_mult == 0. and keys['bias'].decay_mult == 0.
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.04
    assert cfg.train_dataloader.batch_size == 96
