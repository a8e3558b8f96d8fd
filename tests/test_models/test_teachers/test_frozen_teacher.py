"""FrozenTeacher: strict local loading, freezing, re-normalisation, targets."""
import pytest
import torch
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers.frozen_teacher import (CLIP_MEAN, CLIP_STD, IMAGENET_MEAN,
                                                    IMAGENET_STD, FrozenTeacher, FrozenTeachers)

ARCH = dict(embed_dims=48, num_layers=2, num_heads=4, feedforward_channels=96)


def vit_cfg(**kwargs):
    cfg = dict(type='VisionTransformer', arch=ARCH, img_size=96, patch_size=16,
               out_type='featmap')
    cfg.update(kwargs)
    return cfg


def save_random(path, prefix='backbone.', **kwargs):
    vit = MODELS.build(vit_cfg(**kwargs))
    vit.init_weights()
    state = {prefix + k: v for k, v in vit.state_dict().items()}
    torch.save({'state_dict': state, 'meta': {}}, str(path))
    return vit


def teacher(path, **kwargs):
    kwargs.setdefault('prefix', 'backbone.')
    return FrozenTeacher(backbone=vit_cfg(), checkpoint=str(path), name='clip', **kwargs)


def test_loads_exact_weights_and_stays_frozen(tmp_path):
    ref = save_random(tmp_path / 't.pth')
    t = teacher(tmp_path / 't.pth')
    for k, v in ref.state_dict().items():
        assert torch.equal(t.backbone.state_dict()[k], v), k
    assert all(not p.requires_grad for p in t.parameters())
    t.train()
    assert not t.training and not t.backbone.layers[0].training
    out = t(torch.randn(2, 3, 96, 96, requires_grad=True))
    assert out.shape == (2, 36, 48) and not out.requires_grad
    # layer norm without affine: zero mean, unit variance per token
    assert torch.allclose(out.mean(-1), torch.zeros(2, 36), atol=1e-4)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(2, 36), atol=1e-3)
    # an enclosing model's init must not overwrite the loaded weights
    with torch.no_grad():
        t.backbone.ln1.weight.add_(1.0)
    t.init_weights()
    assert torch.equal(t.backbone.ln1.weight, ref.ln1.weight)


def test_teacher_sees_images_in_its_own_normalisation(tmp_path):
    save_random(tmp_path / 't.pth')
    t = teacher(tmp_path / 't.pth', mean=CLIP_MEAN, std=CLIP_STD, input_mean=IMAGENET_MEAN,
                input_std=IMAGENET_STD)
    raw = torch.rand(1, 3, 96, 96) * 255
    seen = []
    t.backbone.patch_embed.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    mean_in, std_in = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(
        IMAGENET_STD).view(1, 3, 1, 1)
    t((raw - mean_in) / std_in)
    expected = (raw - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(
        1, 3, 1, 1)
    assert torch.allclose(seen[0], expected, atol=1e-4)


def test_clip_style_architecture_builds_and_loads(tmp_path):
    clip = dict(pre_norm=True, norm_cfg=dict(type='LN', eps=1e-5),
                layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')))
    save_random(tmp_path / 'clip.pth', **clip)
    t = FrozenTeacher(backbone=vit_cfg(**clip), checkpoint=str(tmp_path / 'clip.pth'),
                      prefix='backbone.')
    assert t(torch.randn(1, 3, 96, 96)).shape == (1, 36, 48)
    # a DINO-style (post-norm, GELU, with patch bias) teacher cannot load these weights
    with pytest.raises(KeyError, match='does not match its architecture'):
        teacher(tmp_path / 'clip.pth')


def test_missing_or_remote_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="teacher 'clip' has no checkpoint"):
        FrozenTeacher(backbone=vit_cfg(), checkpoint=None, name='clip')
    with pytest.raises(FileNotFoundError, match='does not exist.*never downloaded'):
        teacher(tmp_path / 'nope.pth')
    with pytest.raises(ValueError, match='is a URL'):
        teacher('https://example.com/clip.pth')


def test_mismatching_checkpoint_is_a_clear_error(tmp_path):
    save_random(tmp_path / 'deep.pth', arch=dict(ARCH, num_layers=3))
    with pytest.raises(KeyError,
                       match=r"teacher 'clip'.*0 missing keys.*unexpected keys \['layers\.2\."):
        teacher(tmp_path / 'deep.pth')
    save_random(tmp_path / 'wide.pth', arch=dict(ARCH, embed_dims=64))
    with pytest.raises(ValueError, match=r"teacher 'clip'.*does not fit.*cls_token: "
                       r"checkpoint \(1, 1, 64\) vs model \(1, 1, 48\)"):
        teacher(tmp_path / 'wide.pth')
    save_random(tmp_path / 'plain.pth', prefix='')
    with pytest.raises(KeyError, match="no key starting with prefix 'backbone.'"):
        teacher(tmp_path / 'plain.pth')
    save_random(tmp_path / 'pre.pth', prefix='vision.')
    with pytest.raises(KeyError, match="with prefix='vision.'"):
        teacher(tmp_path / 'pre.pth', prefix='')


def test_group_gathers_targets_at_the_given_ids(tmp_path):
    save_random(tmp_path / 'a.pth')
    save_random(tmp_path / 'b.pth')
    cfgs = dict(
        a=dict(type='FrozenTeacher', backbone=vit_cfg(), checkpoint=str(tmp_path / 'a.pth'),
               prefix='backbone.'),
        b=dict(type='FrozenTeacher', backbone=vit_cfg(), checkpoint=str(tmp_path / 'b.pth'),
               prefix='backbone.'))
    group = FrozenTeachers(cfgs, num_patches=36)
    x = torch.randn(2, 3, 96, 96)
    ids = torch.stack([torch.randperm(36)[:9] for _ in range(2)])
    out = group(x, ids)
    assert set(out) == {'a', 'b'} and group['a'].name == 'a'
    full = group['a'](x)
    for i in range(2):
        assert torch.equal(out['a'][i], full[i, ids[i]])
    assert not torch.allclose(out['a'], out['b'])
    with pytest.raises(ValueError, match="teacher 'a' gives 36 patch tokens.*student has 49"):
        FrozenTeachers(cfgs, num_patches=49)(x, ids)
    # never saved, never initialised by an enclosing model, but loadable strictly
    assert group.state_dict() == {} and group.own_state_dict()
    before = {k: v.clone() for k, v in group.own_state_dict().items()}
    group.apply(lambda m: torch.nn.init.zeros_(m.weight) if isinstance(m, torch.nn.Linear)
                else None)
    assert not group.load_state_dict({}, strict=True).missing_keys
    assert all(torch.equal(v, group.own_state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match='at least one frozen teacher'):
        FrozenTeachers({})
