"""PartialDecoder drop path (issue 16): constant per block as the PCAE authors' decoder."""
import pytest
import torch

from pcae_mm.models.necks import PartialDecoder


def make(drop_path_rate=0., depth=3):
    torch.manual_seed(0)
    neck = PartialDecoder(num_patches=36, in_chans=64, embed_dim=32, depth=depth, num_heads=4,
                          out_dims=48, drop_path_rate=drop_path_rate)
    neck.init_weights()
    return neck


def block_rates(neck):
    """The DropPath probability inside each block's attention and FFN."""
    rates = []
    for blk in neck.decoder_blocks:
        found = [m.drop_prob for m in blk.modules() if type(m).__name__ == 'DropPath']
        assert len(found) == 2, f'expected DropPath in attention and FFN, got {found}'
        rates.append(found)
    return rates


def inputs():
    g = torch.Generator().manual_seed(1)
    latent = torch.randn(2, 1 + 9, 64, generator=g)
    ids_keep = torch.arange(9).expand(2, -1)
    ids_decode = torch.tensor([[20, 30, 11, 14], [12, 13, 35, 9]])
    return latent, ids_keep, ids_decode


def test_constant_rate_reaches_every_block():
    assert block_rates(make(0.25)) == [[0.25, 0.25]] * 3
    assert make(0.25).drop_path_rate == [0.25] * 3


def test_per_block_rates_and_default_none():
    assert block_rates(make([0., 0.1, 0.2])) == [[0., 0.], [0.1, 0.1], [0.2, 0.2]]
    assert all(r == [0., 0.] for r in block_rates(make()))


@pytest.mark.parametrize('bad', [1.0, -0.1, [0.1, 0.1]])
def test_bad_rates_raise(bad):
    with pytest.raises(ValueError, match='drop_path_rate'):
        make(bad)


def test_eval_is_deterministic_and_equals_the_no_drop_decoder():
    plain, dropped = make(0.), make(0.5)
    dropped.load_state_dict(plain.state_dict())
    x = inputs()
    plain.eval(), dropped.eval()
    assert torch.equal(plain(*x), dropped(*x))


def test_train_mode_drops_paths_with_a_fixed_seed():
    plain, dropped = make(0.), make(0.5)
    dropped.load_state_dict(plain.state_dict())
    x = inputs()
    plain.train(), dropped.train()
    ref = plain(*x)
    assert torch.equal(ref, plain.eval()(*x))  # no dropout anywhere else in the decoder
    torch.manual_seed(3)
    out1 = dropped(*x)
    torch.manual_seed(3)
    out2 = dropped(*x)
    assert torch.equal(out1, out2)  # same seed, same dropped paths
    assert not torch.allclose(out1, ref, atol=1e-4)
