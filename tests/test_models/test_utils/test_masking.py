import pytest
import torch

from pcae_mm.models.utils import gather_tokens, num_visible, random_masking


def test_vit_b_counts():
    assert num_visible(196, 0.75) == 49
    info = random_masking(2, 196, 0.75, torch.device('cpu'))
    assert info.ids_keep.shape == (2, 49) and info.ids_masked.shape == (2, 147)
    assert info.mask.sum(1).tolist() == [147, 147]


def test_partition_and_mask_agree():
    info = random_masking(4, 36, 0.75, torch.device('cpu'))
    for b in range(4):
        keep, masked = set(info.ids_keep[b].tolist()), set(info.ids_masked[b].tolist())
        assert keep.isdisjoint(masked) and keep | masked == set(range(36))
        assert set(info.mask[b].nonzero().flatten().tolist()) == masked


def test_gather_tokens():
    x = torch.arange(24.).reshape(2, 4, 3)
    ids = torch.tensor([[3, 0], [1, 1]])
    out = gather_tokens(x, ids)
    assert torch.equal(out[0, 0], x[0, 3]) and torch.equal(out[1, 1], x[1, 1])


@pytest.mark.parametrize('ratio', [0, 1, -0.1, 1.2, '0.5'])
def test_bad_mask_ratio(ratio):
    with pytest.raises(ValueError, match='mask_ratio'):
        random_masking(1, 16, ratio, torch.device('cpu'))


def test_mask_equals_the_argsort_formulation():
    """The mask (rank test on one scatter) equals MAE's argsort + gather version."""
    g = torch.Generator().manual_seed(5)
    info = random_masking(3, 49, 0.75, 'cpu', generator=g)
    noise = torch.rand(3, 49, generator=torch.Generator().manual_seed(5))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    assert torch.equal(torch.cat([info.ids_keep, info.ids_masked], 1), ids_shuffle)
    mask = torch.ones(3, 49)
    mask[:, :12] = 0
    assert torch.equal(info.mask, torch.gather(mask, 1, ids_restore))
    assert info.mask.dtype == torch.float32
