import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from tests.helpers import tiny_vit


def build(**kwargs):
    model = MODELS.build(tiny_vit(**kwargs))
    model.init_weights()
    return model


def test_state_dict_matches_mmpretrain_vit():
    ours = build()
    ref = VisionTransformer(arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                      feedforward_channels=128), img_size=96, patch_size=16)
    assert set(ours.state_dict()) == set(ref.state_dict())
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=True)
    assert not missing and not unexpected


def test_vit_b_keys_match_too():
    ours = MODELS.build(dict(type='MIMViT', arch='b'))
    ref = VisionTransformer(arch='b')
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}


def test_masked_forward_shapes():
    model = build()
    latent, info = model(torch.randn(2, 3, 96, 96))
    assert latent.shape == (2, 1 + 9, 64)
    assert info.ids_keep.shape == (2, 9) and info.ids_masked.shape == (2, 27)


def test_plain_forward_and_pos_embed_fixed():
    model = build(out_type='cls_token')
    out = model(torch.randn(2, 3, 96, 96), mask=False)
    assert out[0].shape == (2, 64)
    assert not model.pos_embed.requires_grad


def test_token_reduction_forward_keeps_cls():
    model = build(out_type='cls_token', token_reduction=dict(locations=[1, 2], keep_ratio=0.5))
    out = model(torch.randn(2, 3, 96, 96), mask=False)
    assert out[0].shape == (2, 64)


def test_pretrained_init_is_not_overwritten(tmp_path):
    src = build()
    ckpt = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}}, ckpt)
    dst = MODELS.build(tiny_vit(init_cfg=dict(type='Pretrained', checkpoint=str(ckpt),
                                              prefix='backbone.')))
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='huge-ish'), 'unknown ViT arch'),
    (dict(mask_ratio=1.0), 'mask_ratio'),
    (dict(mask_ratio=0), 'mask_ratio'),
    (dict(img_size=100), 'not divisible'),
    (dict(token_reduction=dict(locations=[0, 1, 2, 3], keep_ratio=0.1)), 'zero tokens'),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(tiny_vit(**kwargs))


def test_wrong_image_size_raises():
    model = build()
    with pytest.raises(ValueError, match='not divisible'):
        model(torch.randn(1, 3, 90, 90))
    with pytest.raises(ValueError, match='expects'):
        model(torch.randn(1, 3, 64, 64))
