import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers import TeacherOut
from tests.helpers import ROOT, tiny_config


def build_tiny(**model_overrides):
    cfg = Config.fromfile(tiny_config('pcae'))
    cfg.merge_from_dict({f"model.{k}": v for k, v in model_overrides.items()})
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.teacher.set_schedule(100)
    return model


def test_teacher_equals_student_after_init():
    model = build_tiny()
    s, t = model.backbone.state_dict(), model.teacher.module.state_dict()
    assert s.keys() == t.keys()
    for k in s:
        assert torch.equal(s[k], t[k]), k


def test_teacher_follows_momentum_after_step():
    model = build_tiny()
    model.teacher.set_schedule(10)
    before = {k: v.clone() for k, v in model.teacher.module.named_parameters()}
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.5)
    model.momentum_update()
    m = model.teacher.momentum_at(0)
    for k, p in model.teacher.module.named_parameters():
        if p.dtype.is_floating_point:
            student = dict(model.backbone.named_parameters())[k]
            assert torch.allclose(p, m * before[k] + (1 - m) * student), k


def test_vit_b_token_flow():
    cfg = Config.fromfile(ROOT + '/configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    cfg.model.backbone.drop_path_rate = 0.0
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    seen = []
    model.neck.decoder_blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    out = model.reconstruct(torch.randn(1, 3, 224, 224))
    assert out.ids_masked.shape == (1, 147)
    assert [s.shape[1] for s in out.extra(TeacherOut).stage_ids] == [73, 36, 18]
    assert out.target.shape == (1, 18, 768) and out.pred.shape == (1, 18, 768)
    assert seen == [torch.Size([1, 1 + 49 + 18, 512])]
    # every survivor is a masked patch, and the stages are nested
    masked = set(out.ids_masked[0].tolist())
    stages = [set(s[0].tolist()) for s in out.extra(TeacherOut).stage_ids]
    assert stages[0] <= masked and stages[1] <= stages[0] and stages[2] <= stages[1]


def test_target_is_teacher_output_at_survivor_ids():
    # similarity PTR (the paper's; the tiny config's default since issue 22): deterministic
    model = build_tiny(token_reduction=dict(mode='similarity')).eval()
    x = torch.randn(2, 3, 96, 96)
    torch.manual_seed(3)
    out = model.reconstruct(x)
    # a manual teacher run on the same masked ids gives the same survivors and features
    ref = model.teacher(x, out.ids_masked)
    assert torch.equal(ref.ids, out.ids_pred) and torch.equal(ref.ids, out.extra(TeacherOut).ids)
    assert torch.allclose(ref.tokens, out.target, atol=1e-6)


def test_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = build_tiny(backbone=dict(drop_path_rate=0.0))
    model.train()
    x = torch.randn(4, 3, 96, 96)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(40):
        torch.manual_seed(1)  # the same mask every step: a truly fixed batch
        loss = model.loss(x, [])['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.momentum_update()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, losses


def test_training_without_hook_fails_loudly():
    model = build_tiny()
    model.teacher.total_updates = None
    model.train()
    with pytest.raises(RuntimeError, match='EMATeacherHook'):
        model.loss(torch.randn(1, 3, 96, 96), [])


def test_pixel_target_option():
    cfg = Config.fromfile(tiny_config('pcae'))
    cfg.model.head = dict(type='PartialPixelHead', patch_size=16)
    cfg.model.target = 'pixels'
    cfg.model.neck.out_dims = 16 * 16 * 3
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.teacher.set_schedule(1)
    loss = model.loss(torch.randn(2, 3, 96, 96), [])['loss']
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_keep_ratio_leaving_zero_tokens_raises():
    cfg = Config.fromfile(tiny_config('pcae'))
    cfg.model.token_reduction = dict(num_stages=4, keep_ratio=0.1)
    with pytest.raises(ValueError, match='zero tokens'):
        MODELS.build(cfg.model)
