import os.path as osp

import pytest
import torch
from mmengine.config import Config

from pcae_mm.models.utils import TokenReduction, build_token_reduction, stage_locations
from tests.helpers import ROOT


def test_stage_locations_follow_pcae_placement():
    assert stage_locations(12, 3) == [0, 4, 8]
    assert stage_locations(12, 1) == [0]
    assert stage_locations(12, 6) == [0, 2, 4, 6, 8, 10]
    assert stage_locations(12, 12) == list(range(12))
    with pytest.raises(ValueError):
        stage_locations(12, 13)


def test_vit_b_counts_147_73_36_18():
    ptr = TokenReduction(stage_locations(12, 3), keep_ratio=0.5)
    assert ptr.token_counts(147) == [147, 73, 36, 18]


@pytest.mark.parametrize('stages', [1, 3, 6, 12])
def test_fixed_total_drop_variants(stages):
    """The paper's stage ablation configs drop 87.5% in total whatever the stage count."""
    name = ('pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py' if stages == 3 else
            f'pcae_vit-base-p16-drop87.5-{stages}stage_8xb512-amp-coslr-300e_in1k.py')
    ptr = Config.fromfile(osp.join(ROOT, 'configs/pcae', name)).model.token_reduction
    assert ptr.num_stages == stages
    keep = ptr.keep_ratio
    assert keep**stages == pytest.approx(0.125)
    counts = TokenReduction(stage_locations(12, stages), keep).token_counts(147)
    assert len(counts) == stages + 1 and counts[-1] >= 1
    # truncation per stage can only keep fewer than 12.5% of 147 (18.4)
    assert counts[-1] <= 18


def test_keeps_least_similar_tokens_and_ids_index_originals():
    torch.manual_seed(0)
    B, N, C = 3, 20, 16
    x = torch.randn(B, N, C)
    ids = torch.randperm(100)[:N].expand(B, -1).clone()  # arbitrary absolute ids
    original = {(b, int(i)): x[b, n] for b in range(B) for n, i in enumerate(ids[b])}
    ptr = TokenReduction([0], keep_ratio=0.25)
    out, kept = ptr.reduce(x, ids)
    assert out.shape == (B, 5, C) and kept.shape == (B, 5)
    for b in range(B):
        # ids point at exactly the token that was kept
        for n, i in enumerate(kept[b]):
            assert torch.equal(out[b, n], original[(b, int(i))])
        # and the kept tokens are the 5 least similar to the normalised mean
        xn = torch.nn.functional.normalize(x[b], dim=-1)
        center = torch.nn.functional.normalize(xn.mean(0), dim=0)
        sim = xn @ center
        expected = set(ids[b][sim.argsort()[:5]].tolist())
        assert set(kept[b].tolist()) == expected


def test_redundant_tokens_are_dropped_first():
    # 8 copies of one token and 4 distinct ones: the copies are the most similar to the mean.
    base = torch.ones(1, 8, 4)
    distinct = torch.eye(4).unsqueeze(0) * -1
    x = torch.cat([base, distinct], 1)
    ids = torch.arange(12).unsqueeze(0)
    _, kept = TokenReduction([0], keep_ratio=4 / 12 + 1e-3).reduce(x, ids)
    assert set(kept[0].tolist()) == {8, 9, 10, 11}


def test_fixed_cls_token_is_always_kept():
    x = torch.randn(2, 1 + 10, 8)
    ids = torch.arange(10).expand(2, -1)
    out, kept = TokenReduction([0], 0.5, num_fixed=1).reduce(x, ids)
    assert out.shape == (2, 1 + 5, 8)
    assert torch.equal(out[:, 0], x[:, 0])
    assert kept.shape == (2, 5)


def test_random_mode_is_a_subset():
    x = torch.randn(2, 10, 8)
    ids = torch.arange(10).expand(2, -1)
    _, kept = TokenReduction([0], 0.5, mode='random').reduce(x, ids)
    for b in range(2):
        assert len(set(kept[b].tolist())) == 5


@pytest.mark.parametrize('kwargs', [
    dict(keep_ratio=0.0), dict(keep_ratio=1.5), dict(mode='nearest', keep_ratio=0.5),
    dict(keep_ratio=0.5, locations=[1, 1]),
])
def test_bad_arguments_raise(kwargs):
    kwargs.setdefault('locations', [0])
    with pytest.raises(ValueError):
        TokenReduction(**kwargs)


def test_schedule_leaving_zero_tokens_raises():
    ptr = TokenReduction([0, 1, 2], keep_ratio=0.1)
    with pytest.raises(ValueError, match='zero tokens'):
        ptr.check(20, depth=4)
    with pytest.raises(ValueError, match='do not exist'):
        TokenReduction([0, 8], 0.5).check(100, depth=4)


def test_scores_keep_no_graph_and_reduced_tokens_keep_their_gradient():
    """Scores only rank (computed without autograd, in fp32); the kept tokens carry gradient."""
    tr = TokenReduction([0], keep_ratio=0.5, num_fixed=1)
    x = torch.randn(2, 1 + 8, 16, requires_grad=True)
    score = tr.score(x[:, 1:])
    assert score.grad_fn is None and score.dtype == torch.float32
    ref = 1 - torch.nn.functional.cosine_similarity(
        x[:, 1:].detach(), torch.nn.functional.normalize(x[:, 1:].detach(), dim=-1).mean(
            1, keepdim=True), dim=-1)
    assert torch.allclose(score, ref, atol=1e-6)
    out, ids = tr.reduce(x, torch.arange(8).expand(2, 8))
    out.sum().backward()
    assert out.shape == (2, 5, 16) and ids.shape == (2, 4)
    assert (x.grad.abs().sum(-1) > 0).sum().item() == 2 * 5  # cls + the 4 kept, per image
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert tr.score(x[:, 1:].bfloat16()).dtype == torch.float32


def test_build_token_reduction_from_config():
    assert build_token_reduction(None, 12, 1) is None
    assert build_token_reduction(dict(keep_ratio=1), 12, 1) is None
    ptr = build_token_reduction(dict(keep_ratio=0.5), 12, 0)  # 3 stages by default
    assert ptr.locations == [0, 4, 8] and ptr.num_fixed == 0
    ptr = build_token_reduction(dict(keep_ratio=0.5, locations=[1, 5], mode='random'), 12, 1)
    assert ptr.locations == [1, 5] and ptr.mode == 'random' and ptr.num_fixed == 1


@pytest.mark.parametrize('cfg, match', [
    (dict(keep_ratio=0.5, stages=3), 'unknown token_reduction keys'),
    (dict(num_stages=3), 'needs keep_ratio'),
    (dict(keep_ratio=0.5, num_stages=3, locations=[0]), 'OR num_stages'),
])
def test_build_token_reduction_rejects_bad_configs(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_token_reduction(cfg, 12, 0)
