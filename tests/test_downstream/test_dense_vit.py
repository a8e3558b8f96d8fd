"""DenseViT, window attention, SimpleFeaturePyramid and the ViT layer-decay constructor."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from tests.helpers.downstream import TINY_ARCH
from pcae_mm.downstream.window_attention import window_partition, window_unpartition


def dense_vit(**kw):
    cfg = dict(type='DenseViT', arch=TINY_ARCH, img_size=96, drop_path_rate=0.)
    cfg.update(kw)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    return model


def test_window_partition_round_trip_with_padding():
    x = torch.randn(2, 7, 5, 3)
    windows, pad_hw = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 2, 16, 3) and pad_hw == (8, 8)
    assert torch.equal(window_unpartition(windows, 4, pad_hw, (7, 5)), x)


def test_global_dense_vit_matches_mmpretrain_vision_transformer():
    """Same weights, same function: DenseViT with cls token and global attention is
    mmpretrain's VisionTransformer with featmap outputs."""
    vit = VisionTransformer(arch=TINY_ARCH, img_size=96, out_indices=[1, 3], out_type='featmap',
                            final_norm=False)
    vit.eval()
    ours = dense_vit(with_cls_token=True, out_indices=[1, 3])
    result = ours.load_state_dict(vit.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 96, 96)
    for a, b in zip(vit(x), ours(x)):
        torch.testing.assert_close(a, b)


def test_one_window_over_the_whole_grid_equals_global_attention():
    x = torch.randn(1, 3, 96, 96)
    glob = dense_vit(out_indices=[3])
    win = dense_vit(out_indices=[3], window_size=6)  # 6 x 6 grid: one window
    win.load_state_dict(glob.state_dict())
    torch.testing.assert_close(glob(x)[0], win(x)[0])
    smaller = dense_vit(out_indices=[3], window_size=3)
    smaller.load_state_dict(glob.state_dict())
    assert not torch.allclose(glob(x)[0], smaller(x)[0])


def test_zero_initialised_relative_positions_change_nothing_until_trained():
    x = torch.randn(1, 3, 128, 128)
    plain = dense_vit(out_indices=[3], window_size=4, global_attn_indices=[1, 3])
    rel = dense_vit(out_indices=[3], window_size=4, global_attn_indices=[1, 3],
                    use_rel_pos=True, rel_pos_grid=8)
    missing = rel.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == sorted(f'layers.{i}.attn.rel_pos_{a}' for i in range(4)
                                     for a in 'hw')
    assert rel.layers[0].attn.rel_pos_h.shape == (2 * 4 - 1, 16)  # window-sized table
    assert rel.layers[1].attn.rel_pos_h.shape == (2 * 8 - 1, 16)  # global: rel_pos_grid
    torch.testing.assert_close(plain(x)[0], rel(x)[0])
    with torch.no_grad():
        rel.layers[1].attn.rel_pos_h.normal_()
    assert not torch.allclose(plain(x)[0], rel(x)[0])


@pytest.mark.parametrize('hw', [(96, 96), (128, 80), (100, 70)])
def test_any_input_size_interpolates_position_embedding(hw):
    model = dense_vit(out_indices=[1, 3], window_size=4, global_attn_indices=[3],
                      use_rel_pos=True)
    outs = model(torch.randn(1, 3, *hw))
    grid = tuple(-(-s // 16) for s in hw)  # padded to the patch size
    assert [o.shape for o in outs] == [(1, 64) + grid] * 2


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match='with_cls_token=False'):
        MODELS.build(dict(type='DenseViT', arch=TINY_ARCH, with_cls_token=True, window_size=4))
    with pytest.raises(ValueError, match='out_indices 7 out of range'):
        MODELS.build(dict(type='DenseViT', arch=TINY_ARCH, out_indices=[7]))
    with pytest.raises(ValueError, match='unknown ViT arch'):
        MODELS.build(dict(type='DenseViT', arch='gigantic'))
    with pytest.raises(ValueError, match='B x C x H x W'):
        dense_vit()(torch.randn(3, 96, 96))


def test_simple_feature_pyramid_strides_and_bad_input():
    neck = MODELS.build(dict(type='SimpleFeaturePyramid', in_channels=64, out_channels=32))
    outs = neck((torch.randn(2, 64, 8, 8), ))
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2]  # strides 4, 8, 16, 32, 64
    assert all(o.shape[1] == 32 for o in outs)
    with pytest.raises(ValueError, match='expects B x 64 x h x w'):
        neck(torch.randn(2, 32, 8, 8))
    with pytest.raises(ValueError, match='scale_factors'):
        MODELS.build(dict(type='SimpleFeaturePyramid', in_channels=64, scale_factors=(3, )))


class Detector(torch.nn.Module):
    """A detector-shaped model: a ViT backbone plus a neck, and no get_layer_depth."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.neck = torch.nn.Linear(4, 4)


def test_layer_decay_constructor_for_models_without_get_layer_depth():
    model = Detector(dense_vit(use_rel_pos=True, window_size=3))
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5, flat_decay_mult=0.,
                           custom_keys={'pos_embed': dict(decay_mult=0.)})))
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    assert len(groups) == sum(1 for _ in model.parameters())
    assert groups['backbone.pos_embed']['lr'] == pytest.approx(1e-4 * 0.5**5)
    assert groups['backbone.patch_embed.projection.weight']['lr'] == pytest.approx(1e-4 * 0.5**5)
    assert groups['backbone.layers.0.attn.qkv.weight']['lr'] == pytest.approx(1e-4 * 0.5**4)
    assert groups['backbone.layers.3.attn.rel_pos_h']['lr'] == pytest.approx(1e-4 * 0.5)
    assert groups['neck.weight']['lr'] == pytest.approx(1e-4)
    assert groups['backbone.layers.3.ln1.weight']['weight_decay'] == 0
    assert groups['backbone.pos_embed']['weight_decay'] == 0
    assert groups['backbone.layers.3.attn.qkv.weight']['weight_decay'] == 0.05

    with pytest.raises(TypeError, match='get_layer_depth'):
        build_optim_wrapper(torch.nn.Sequential(torch.nn.Linear(2, 2)), dict(
            optimizer=dict(type='AdamW', lr=1e-4),
            constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.5)))
