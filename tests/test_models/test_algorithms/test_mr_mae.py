"""MR-MAE / MR-MCMAE: frozen teachers, visible-id mimic targets, separate loss terms."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.models.algorithms import MimicOut
from tests.helpers import ROOT, save_random_teachers, tiny_config


def tiny_cfg(tmp_path, path=tiny_config('mr_mae')) -> Config:
    cfg = Config.fromfile(path)
    save_random_teachers(cfg, tmp_path)
    return cfg


def build(cfg: Config):
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(params=[tiny_config('mr_mae'), tiny_config('mr_mcmae')], ids=['mr-mae', 'mr-mcmae'])
def model(request, tmp_path):
    return build(tiny_cfg(tmp_path, request.param))


def teacher_state(model):
    return {f'{n}.{k}': v.clone() for n, t in model.target_generator.items()
            for k, v in t.state_dict().items()}


def test_teachers_are_frozen_unsaved_and_outside_the_optimizer(model):
    teachers = model.target_generator  # mmpretrain's target-generator slot
    assert set(teachers) == {'clip', 'dino'}
    teacher_params = {id(p) for t in teachers.values() for p in t.parameters()}
    assert all(not p.requires_grad for t in teachers.values() for p in t.parameters())
    state = model.state_dict()
    assert not any('teacher' in k or 'target_generator' in k for k in state)
    assert any(k.startswith('mimic_heads.clip.') for k in state)
    # a checkpoint without the teachers loads strictly and leaves them as they are
    before = teacher_state(model)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(v, teacher_state(model)[k]) for k, v in before.items())
    # as the configs build it: with a paramwise_cfg mmengine skips requires_grad=False tensors
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='mmpretrain.TrainableParamsOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        paramwise_cfg=dict(custom_keys={'bias': dict(decay_mult=0.)})))
    optimized = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert optimized and not optimized & teacher_params
    # the loaded teacher weights survive the model's own init (Xavier on every Linear)
    ckpt = torch.load(model.target_generator['clip'].checkpoint)['state_dict']
    for k, v in model.target_generator['clip'].backbone.state_dict().items():
        assert torch.equal(v, ckpt['backbone.' + k]), k


def test_training_never_changes_the_teachers(model):
    before = teacher_state(model)
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.train()
    assert all(not t.training for t in model.target_generator.values())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randn(2, 3, 96, 96)
    for _ in range(2):
        losses = model.loss(x, [])
        assert set(losses) == {'loss_pix', 'loss_mimic_clip', 'loss_mimic_dino'}
        assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
        opt.zero_grad()
        sum(losses.values()).backward()
        assert all(p.grad is None for t in model.target_generator.values() for p in t.parameters())
        opt.step()
    after = teacher_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in model.backbone.state_dict().items() if not torch.equal(v, student[k])]
    assert changed  # the student did train


def test_mimic_targets_come_from_the_visible_ids(model, monkeypatch):
    # teachers that answer each patch's own id, so the target reveals which patch it came from
    for t in model.target_generator.values():
        monkeypatch.setattr(t, 'forward', lambda images: torch.arange(36.).view(1, 36, 1).expand(
            images.shape[0], 36, 48))
    seen = {}
    for name, head in model.mimic_heads.items():
        orig = head.loss

        def spy(pred, target, _name=name, _orig=orig):
            seen[_name] = (pred, target)
            return _orig(pred, target)
        monkeypatch.setattr(head, 'loss', spy)
    outs = []
    orig_forward = model.forward_mim
    monkeypatch.setattr(model, 'forward_mim', lambda inputs: outs.append(
        orig_forward(inputs)) or outs[-1])
    model.loss(torch.randn(2, 3, 96, 96), [])
    out = outs[0]
    keep, masked = out.ids_keep, out.ids_masked
    assert keep.shape == (2, 9) and masked.shape == (2, 27)
    visible = out.latent if out.latent.shape[1] == 9 else out.latent[:, 1:]  # B x V x C
    for name in ('clip', 'dino'):
        pred, target = seen[name]
        assert pred.shape == (2, 9, 48)
        assert torch.equal(target[..., 0].long(), keep)  # exactly the visible patches
        assert not set(target[0, :, 0].long().tolist()) & set(masked[0].tolist())
        assert torch.equal(pred, model.mimic_heads[name](visible))  # from the visible tokens


def test_targets_are_the_full_image_teacher_outputs_at_visible_ids(tmp_path):
    model = build(tiny_cfg(tmp_path)).eval()
    x = torch.randn(2, 3, 96, 96)
    out = model.reconstruct(x)
    for name, t in model.target_generator.items():
        full = t(x)  # B x 36 x 48
        for b in range(2):
            assert torch.allclose(out.extra(MimicOut).target[name][b], full[b, out.ids_keep[b]])


def test_loss_weight_and_type_follow_the_config(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.model.mimic_heads.dino.loss_weight = 0.
    model = build(cfg)
    losses = model.loss(torch.randn(2, 3, 96, 96), [])
    assert losses['loss_mimic_dino'].item() == 0 and losses['loss_mimic_clip'].item() > 0
    assert model.mimic_heads['dino'].loss_type == 'mse'


def test_one_teacher_and_default_widths(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.model.teachers.pop('dino')
    cfg.model.mimic_heads = dict(clip=dict(type='MimicHead'))  # widths filled in
    model = build(cfg)
    assert model.mimic_heads['clip'].proj.weight.shape == (48, 64)
    assert set(model.loss(torch.randn(1, 3, 96, 96), [])) == {'loss_pix', 'loss_mimic_clip'}


def test_bad_teacher_configs_are_clear_errors(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.model.mimic_heads.clip.out_channels = 32
    with pytest.raises(ValueError, match="outputs 32 channels but teacher 'clip' is 48 wide"):
        MODELS.build(cfg.model)
    cfg = tiny_cfg(tmp_path)
    cfg.model.mimic_heads.clip.in_channels = 768
    with pytest.raises(ValueError, match="takes 768 channels but the student backbone is 64"):
        MODELS.build(cfg.model)
    cfg = tiny_cfg(tmp_path)
    cfg.model.mimic_heads.pop('dino')
    with pytest.raises(ValueError, match='exactly one mimic head'):
        MODELS.build(cfg.model)
    cfg = tiny_cfg(tmp_path)
    cfg.model.teachers.clip.checkpoint = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match="teacher 'clip'.*does not exist"):
        MODELS.build(cfg.model)


def test_teachers_follow_device_and_dtype_moves(tmp_path):
    model = build(tiny_cfg(tmp_path)).double()
    assert all(p.dtype == torch.float64 for t in model.target_generator.values()
               for p in t.parameters())
    assert model.target_generator['clip'].scale.dtype == torch.float64
    model.float()
    assert model.loss(torch.randn(1, 3, 96, 96), [])['loss_pix'].dtype == torch.float32


def test_renormalises_from_the_data_preprocessor(tmp_path):
    model = build(tiny_cfg(tmp_path))
    clip, dino = model.target_generator['clip'], model.target_generator['dino']
    # DINO uses ImageNet statistics like the preprocessor: identity
    assert torch.allclose(dino.scale, torch.ones(1, 3, 1, 1))
    assert torch.allclose(dino.shift, torch.zeros(1, 3, 1, 1), atol=1e-6)
    raw = torch.tensor([10., 128., 250.]).view(1, 3, 1, 1)
    x = (raw - model.data_preprocessor.mean) / model.data_preprocessor.std
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1) * 255
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1) * 255
    assert torch.allclose(x * clip.scale + clip.shift, (raw - clip_mean) / clip_std, atol=1e-5)


def test_vit_b_configs_never_download_teachers():
    for name in ('mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k.py',
                 'mr-mcmae_convvit-base_8xb512-amp-coslr-400e_in1k.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs/mr_mae', name))
        assert set(cfg.model.teachers) == {'clip', 'dino'}
        assert cfg.model.teachers.clip.backbone.pre_norm
        # without the local file the teacher cannot be built, and the error names it
        for teacher in ('clip', 'dino'):
            with pytest.raises(FileNotFoundError, match=f"'{teacher}'.*never downloaded"):
                MODELS.build(cfg.model.teachers[teacher], default_args=dict(name=teacher))
    assert cfg.train_cfg.max_epochs == 400 and cfg.model.backbone.type == 'MCMAEViT'


def test_benchmark_configs_point_at_mr_mae_checkpoints():
    bench = osp.join(ROOT, 'configs/mr_mae/benchmarks')
    for name in sorted(__import__('os').listdir(bench)):
        cfg = Config.fromfile(osp.join(bench, name))
        init = cfg.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.prefix == 'backbone.', name
        mcmae = 'mcmae' in name
        assert ('mr-mcmae' if mcmae else 'mr-mae') in init.checkpoint, name
        assert cfg.model.backbone.type.endswith('MCMAEViT') == mcmae, name
        if mcmae:
            assert cfg.model.backbone.masking is False
