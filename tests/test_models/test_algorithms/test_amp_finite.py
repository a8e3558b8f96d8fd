"""Mixed precision: every algorithm trains under bf16 autocast with finite losses and gradients,
and the feature loss is exact for fp16 inputs whose variance overflows fp16."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

import pcae_mm  # noqa: F401
from tests.helpers import TINY_CONFIGS, build_tiny_model


@pytest.mark.parametrize('name', sorted(TINY_CONFIGS))
def test_bf16_autocast_training_is_finite(name, tmp_path):
    torch.manual_seed(0)
    model, size = build_tiny_model(name, tmp_path)
    model.train()
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3))
    # collated as default_collate does in the pre-training configs
    data = dict(inputs=torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8),
                data_samples=[DataSample() for _ in range(4)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(3):
        # BaseModel.train_step, split open to look at the gradients before the update
        with torch.autocast('cpu', dtype=torch.bfloat16):
            batch = model.data_preprocessor(data, True)
            loss, log_vars = model.parse_losses(model(**batch, mode='loss'))
        assert torch.isfinite(loss), (name, log_vars)
        wrapper.backward(loss)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, name
        assert all(torch.isfinite(g).all() for g in grads), name
        wrapper.step()
        wrapper.zero_grad()
        if hasattr(model, 'momentum_update'):
            model.momentum_update()
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items()), name
    assert all(torch.isfinite(p).all() for p in model.state_dict().values()
               if p.dtype.is_floating_point), name


@pytest.mark.parametrize('cos_dim', [-1, 1])
def test_cosine_head_is_finite_for_fp16_outliers(cos_dim):
    from pcae_mm.models.heads import FeatureCosineHead
    from pcae_mm.models.utils.targets import standardize
    head = FeatureCosineHead(cos_dim=cos_dim, num_folds=2)
    torch.manual_seed(0)
    target = (torch.randn(2, 4, 64) * 400).half()  # channel variance ~1.6e5 > fp16 max 65504
    pred = torch.randn(2, 4, 64).half()
    exact = standardize(target.float())
    # the hazard is real: standardising in fp16 overflows the variance and loses the target
    assert not torch.allclose(standardize(target).float(), exact, atol=1e-2)
    loss = head.loss(pred, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.allclose(loss, head.loss(pred.float(), target.float()), atol=1e-6)
