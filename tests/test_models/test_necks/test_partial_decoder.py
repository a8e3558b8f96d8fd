import pytest
import torch

from pcae_mm.models.necks import PartialDecoder


def make():
    neck = PartialDecoder(num_patches=36, in_chans=64, embed_dim=32, depth=2, num_heads=4,
                          out_dims=48)
    neck.init_weights()
    return neck.eval()


def test_decoder_sees_cls_visible_and_retained_tokens_only():
    neck = make()
    seen = []
    neck.decoder_blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    latent = torch.randn(2, 1 + 9, 64)
    ids_keep = torch.arange(9).expand(2, -1)
    ids_decode = torch.tensor([[20, 30, 11], [12, 13, 35]])
    pred = neck(latent, ids_keep, ids_decode)
    assert pred.shape == (2, 3, 48)
    assert seen == [torch.Size([2, 1 + 9 + 3, 32])]


def test_prediction_order_follows_ids_and_equals_full_decoding():
    neck = make()
    latent = torch.randn(1, 1 + 9, 64)
    ids_keep = torch.arange(9).unsqueeze(0)
    ids = torch.tensor([[20, 30, 11, 14]])
    pred = neck(latent, ids_keep, ids)
    pred_rev = neck(latent, ids_keep, ids.flip(1))
    assert torch.allclose(pred, pred_rev.flip(1), atol=1e-5)


def test_width_mismatch_raises():
    with pytest.raises(ValueError, match='encoder width'):
        make()(torch.randn(1, 5, 32), torch.arange(4).unsqueeze(0), torch.tensor([[7]]))
