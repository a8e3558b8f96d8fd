"""MCMAEViT: masked convolutions never leak masked pixels; shapes; downstream forward."""
import pytest
import torch
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.models.backbones.mcmae_vit import MCMAEViT

TINY = dict(embed_dims=[32, 48, 64], depths=[2, 2, 2], num_heads=4)


def tiny(**kwargs):
    cfg = dict(type='MCMAEViT', arch=TINY, img_size=96, mask_ratio=0.75)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def masked_pixels(mask, size=96, p=16):
    """B x L patch mask (1 = masked) -> B x 1 x H x W pixel mask."""
    h = size // p
    return mask.reshape(-1, 1, h, h).repeat_interleave(p, 2).repeat_interleave(p, 3)


def run(model, x, seed=0):
    torch.manual_seed(seed)
    return model(x, mask=True)


def test_masked_pixels_do_not_leak_into_visible_outputs():
    model = tiny()
    decoder = MODELS.build(dict(type='MultiScaleSkipDecoder', skip_channels=(32, 48),
                                num_patches=36, in_chans=64, embed_dim=32, depth=1,
                                num_heads=4, out_dims=16 * 16 * 3)).eval()
    x = torch.randn(2, 3, 96, 96)
    latent, info, skips = run(model, x)
    assert latent.shape == (2, 9, 64)
    assert skips[0].shape == (2, 32, 24, 24) and skips[1].shape == (2, 48, 12, 12)
    pred = decoder(latent, info.ids_keep, info.ids_masked, skips)
    assert pred.shape == (2, 27, 768)

    pix = masked_pixels(info.mask)  # B x 1 x H x W, 1 = masked
    x2 = x * (1 - pix) + 100 * torch.randn_like(x) * pix  # change only masked pixels
    latent2, info2, skips2 = run(model, x2)
    assert torch.equal(info.ids_keep, info2.ids_keep)
    assert torch.allclose(latent, latent2, atol=1e-5)
    # the early-stage maps agree at every visible position, and so does the decoder
    for s, s2, stride in zip(skips, skips2, (4, 2)):
        vis = (1 - info.mask).reshape(-1, 1, 6, 6).repeat_interleave(stride, 2)
        vis = vis.repeat_interleave(stride, 3).bool().expand_as(s)
        assert torch.allclose(s[vis], s2[vis], atol=1e-5)
        assert not torch.allclose(s[~vis], s2[~vis], atol=1e-3)
    assert torch.allclose(pred, decoder(latent2, info.ids_keep, info.ids_masked, skips2),
                          atol=1e-5)

    # control: changing one visible patch does change the visible outputs
    vis_pix = masked_pixels(1 - info.mask)
    latent3, _, _ = run(model, x + vis_pix * torch.randn_like(x))
    assert not torch.allclose(latent, latent3, atol=1e-3)


def test_without_mask_multiplication_masked_pixels_would_leak(monkeypatch):
    """The leakage test above can fail: an unmasked convolution leaks through the 5x5 conv."""
    model = tiny()
    x = torch.randn(1, 3, 96, 96)
    latent, info, _ = run(model, x)
    x2 = x + 10 * masked_pixels(info.mask) * torch.randn_like(x)
    monkeypatch.setattr(model, 'visibility_maps', lambda mask: None)
    a, _, _ = run(model, x)
    b, _, _ = run(model, x2)
    assert not torch.allclose(a, b, atol=1e-3)


def test_plain_forward_multiscale_and_avg():
    model = tiny(masking=False)
    outs = model(torch.randn(2, 3, 96, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 24, 24), (2, 48, 12, 12), (2, 64, 6, 6)]
    outs = model(torch.randn(1, 3, 128, 160))  # detection-style size: pos_embed interpolated
    assert [tuple(o.shape) for o in outs] == [(1, 32, 32, 40), (1, 48, 16, 20), (1, 64, 8, 10)]
    model = tiny(out_type='avg_featmap', out_indices=(2, ))
    (feat, ) = model(torch.randn(2, 3, 96, 96), mask=False)
    assert feat.shape == (2, 64)


def test_base_architecture_token_flow():
    model = MCMAEViT(arch='base', img_size=224)
    model.eval()
    with torch.no_grad():
        latent, info, skips = model(torch.randn(1, 3, 224, 224))
    assert latent.shape == (1, 49, 768) and info.ids_masked.shape == (1, 147)
    assert skips[0].shape == (1, 256, 56, 56) and skips[1].shape == (1, 384, 28, 28)
    assert len(model.blocks1) == 2 and len(model.blocks2) == 2 and len(model.layers) == 11


def test_layer_depth_and_bad_input():
    model = tiny()
    names = [n for n, _ in model.named_parameters()]
    depths = [model.get_layer_depth(n)[0] for n in names]
    assert model.get_layer_depth('patch_embed1.projection.weight') == (0, 8)
    assert model.get_layer_depth('layers.1.ln1.weight') == (6, 8)
    assert model.get_layer_depth('ln1.weight') == (7, 8)
    assert depths == sorted(depths)  # registration order follows depth
    with pytest.raises(ValueError, match='divisible by 16'):
        model(torch.randn(1, 3, 90, 90))
    with pytest.raises(ValueError, match='three stages'):
        MCMAEViT(arch=dict(embed_dims=[8, 8], depths=[1, 1], num_heads=2))
