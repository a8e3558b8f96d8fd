import pytest
import torch

from pcae_mm.models.heads import FeatureCosineHead, PartialPixelHead
from pcae_mm.models.utils.targets import patch_pixels, patchify, standardize


def test_cosine_loss_zero_for_matching_standardised_target():
    target = torch.randn(2, 5, 8)
    head = FeatureCosineHead()
    assert head.loss(standardize(target) * 3, target).item() == pytest.approx(0, abs=1e-5)
    assert head.loss(-standardize(target), target).item() == pytest.approx(2, abs=1e-5)


def test_token_axis_variant_differs():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    a = FeatureCosineHead(cos_dim=-1).loss(pred, target)
    b = FeatureCosineHead(cos_dim=1, num_folds=3).loss(pred, target)
    assert not torch.isclose(a, b)


def test_width_mismatch_is_named():
    with pytest.raises(ValueError, match='teacher width'):
        FeatureCosineHead().loss(torch.randn(1, 2, 4), torch.randn(1, 2, 8))


def test_pixel_head_patch_layout_and_loss():
    img = torch.randn(1, 3, 32, 32)
    patches = patchify(img, 16)
    assert patches.shape == (1, 4, 768)
    assert torch.equal(patches[0, 1].reshape(16, 16, 3), img[0, :, :16, 16:].permute(1, 2, 0))
    head = PartialPixelHead(patch_size=16)
    ids = torch.tensor([[3, 1]])
    target = patch_pixels(img, ids, 16)  # B x K x ppC, raw
    assert torch.equal(target[0, 1], patches[0, 1])
    # the head normalises the target per patch (norm-pix) before the MSE
    assert head.loss(standardize(target), target).item() == pytest.approx(0, abs=1e-6)
    assert PartialPixelHead(norm_pix=False).loss(target, target).item() == 0
    with pytest.raises(ValueError, match='patch_size'):
        head.loss(torch.randn(1, 2, 48), torch.randn(1, 2, 48))
