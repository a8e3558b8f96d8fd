"""PR-MIM's PartialReconstruction part: selection, progressive schedule, light head."""
import pytest
import torch

from pcae_mm.models.utils.furthest_sampling import pairwise_grid_dist2
from pcae_mm.models.utils.masking import random_masking
from pcae_mm.models.utils.partial_reconstruction import PartialReconstruction


def part(**kw):
    cfg = dict(throw_ratio=0.5, in_dims=8, out_dims=12, grid_size=(14, 14))
    cfg.update(kw)
    m = PartialReconstruction(**cfg)
    m.init_weights()
    return m


def masks(B=3, seed=0):
    return random_masking(B, 196, 0.75, 'cpu', generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('sampling', ['furthest', 'random'])
def test_select_partitions_the_masked_patches(sampling):
    info = masks()
    sel = part(sampling=sampling).select(info.ids_keep, info.ids_masked)
    assert sel.ids_decode.shape == (3, 49) and sel.ids_thrown.shape == (3, 98)
    for b in range(3):
        decode, thrown = set(sel.ids_decode[b].tolist()), set(sel.ids_thrown[b].tolist())
        assert not decode & thrown and decode | thrown == set(info.ids_masked[b].tolist())
    if sampling == 'random':
        assert torch.equal(sel.ids_decode, info.ids_masked[:, :49])
    # every thrown patch's owner is its nearest decoded patch, thrown sorted nearest first
    d2 = pairwise_grid_dist2(sel.ids_thrown, sel.ids_decode, (14, 14))  # B x T x K
    owner_d2 = torch.gather(d2, 2, sel.owner[..., None])[..., 0]
    assert torch.equal(owner_d2, d2.min(dim=2).values)
    assert (owner_d2[:, 1:] >= owner_d2[:, :-1]).all()


def test_thrown_counts_for_the_paper_shares():
    # ViT-B/16, mask 0.75 (147 masked): decoder tokens 1 + 49 + K
    for ratio, kept in ((0.25, 98), (0.375, 74), (0.5, 49), (0.625, 25)):
        p = part(throw_ratio=ratio)
        p.check(196, 147)
        assert 147 - p.num_thrown == kept


def test_bad_thrown_shares_are_clear_errors():
    with pytest.raises(ValueError, match='leaves no decoded token'):
        part(throw_ratio=0.75).check(196, 147)
    with pytest.raises(ValueError, match='exceeds the masked share'):
        part(throw_ratio=0.8).check(196, 147)
    with pytest.raises(ValueError, match='throws no patch'):
        part(throw_ratio=0.004).check(196, 147)
    with pytest.raises(ValueError, match='throw_ratio'):
        part(throw_ratio=1.5)
    with pytest.raises(ValueError, match='sampling'):
        part(sampling='nearest')
    with pytest.raises(ValueError, match='unknown progressive keys'):
        part(progressive=dict(share=1.))


def test_progressive_share_schedule_and_missing_hook():
    p = part(progressive=dict(start_share=0., end_share=1., start_progress=0.2, end_progress=0.6))
    with pytest.raises(RuntimeError, match='ProgressiveReconstructionHook'):
        p.share()
    for progress, share in ((0., 0.), (0.2, 0.), (0.4, 0.5), (0.6, 1.), (1., 1.)):
        p.set_progress(progress)
        assert p.share() == pytest.approx(share)
    p.set_progress(0.4)
    assert p.num_supervised() == 49
    # a constant share needs no progress
    assert part(progressive=dict(start_share=1., end_share=1.)).num_supervised() == 98
    assert part(progressive=None).share() == 0.


def test_progressive_head_predicts_the_nearest_thrown_patches():
    info = masks()
    p = part(progressive=dict(start_share=0.25, end_share=0.25))
    sel = p.select(info.ids_keep, info.ids_masked)
    hidden = torch.randn(3, 49, 8)
    pred, ids = p.predict_thrown(hidden, sel)
    assert pred.shape == (3, 24, 12) and torch.equal(ids, sel.ids_thrown[:, :24])
    # pred = W (h_owner + e[dy, dx]) + b, with the grid offset from owner to thrown patch
    for b, s in ((0, 0), (1, 5), (2, 23)):
        k = int(sel.owner[b, s])
        t, o = int(ids[b, s]), int(sel.ids_decode[b, k])
        offset = (t // 14 - o // 14 + 13) * 27 + (t % 14 - o % 14 + 13)
        expected = p.proj(hidden[b, k] + p.offset_embed.weight[offset])
        assert torch.allclose(pred[b, s], expected, atol=1e-6)
    pred.sum().backward()
    assert hidden.grad is None  # hidden is a leaf without requires_grad
    assert p.proj.weight.grad.abs().sum() > 0 and p.offset_embed.weight.grad.abs().sum() > 0
