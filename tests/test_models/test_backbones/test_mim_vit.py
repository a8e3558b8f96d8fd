import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from conftest import tiny_vit


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


def test_encode_subset_equals_full_attention_over_the_same_tokens():
    model = build()
    model.eval()
    x = torch.randn(2, 3, 96, 96)
    ids = torch.tensor([[5, 1, 7, 30], [0, 2, 4, 6]])
    tokens, out_ids, stages = model.encode_subset(x, ids)
    assert tokens.shape == (2, 4, 64) and torch.equal(out_ids, ids) and stages == []
    # reference: the same patches, hand-gathered, through the blocks
    patches = model.patch_embed(x)[0] + model.pos_embed[:, 1:]
    ref = torch.stack([patches[b, ids[b]] for b in range(2)])
    for layer in model.layers:
        ref = layer(ref)
    assert torch.allclose(tokens, model.ln1(ref), atol=1e-5)


def test_encode_subset_folds_do_not_attend_to_each_other():
    model = build()
    model.eval()
    x = torch.randn(1, 3, 96, 96)
    ids = torch.arange(12).unsqueeze(0)
    folded, _, _ = model.encode_subset(x, ids, num_folds=3, with_cls=True)
    alone, _, _ = model.encode_subset(x, ids[:, 4:8], with_cls=True)
    assert torch.allclose(folded[:, 4:8], alone, atol=1e-5)
    with pytest.raises(ValueError, match='equal folds'):
        model.encode_subset(x, ids, num_folds=5)


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
