"""SdAE: folded EMA teacher, full feature decoder, cosine loss."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from pcae_mm.models.teachers import FoldedEMATeacher, TeacherOut
from tests.helpers import ROOT, tiny_config


def build_tiny(**model_overrides):
    cfg = Config.fromfile(tiny_config('sdae'))
    cfg.merge_from_dict({f'model.{k}': v for k, v in model_overrides.items()})
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.teacher.set_schedule(4)
    return model


def test_defaults_teacher_copy_and_epoch_ema():
    model = build_tiny()
    t = model.teacher
    # the recipe's 0.96 -> 0.99 per epoch as shares of the run (25 and 100 of 300 epochs):
    # over this 4-update schedule 0.33 update (-> 0, a copy) and 1.33 updates (-> 0.25)
    assert (t.horizon, t.end_horizon, t.update_by) == (
        pytest.approx(25 / 300), pytest.approx(100 / 300), 'epoch')
    assert (t.momentum, t.end_momentum) == (0.0, pytest.approx(0.25))
    s = model.backbone.state_dict()
    for k, v in model.teacher.module.state_dict().items():
        assert torch.equal(s[k], v), k
    assert build_tiny(teacher=dict(update_by='iter')).teacher.update_by == 'iter'


def test_folds_are_disjoint_cover_the_masked_tokens_and_never_attend_to_each_other():
    model = build_tiny().eval()
    x = torch.randn(2, 3, 96, 96)
    torch.manual_seed(0)
    out = model.reconstruct(x)
    fold_ids = out.ids_masked.reshape(2, 3, 9)  # fold f = ids_masked[:, 9f:9(f+1)]
    assert out.target.shape == (2, 27, 64)
    assert torch.equal(out.extra(TeacherOut).ids, out.ids_masked)
    for b in range(2):
        folds = [set(f.tolist()) for f in fold_ids[b]]
        assert all(len(f) == 9 for f in folds)
        assert not (folds[0] & folds[1] or folds[0] & folds[2] or folds[1] & folds[2])
        assert set().union(*folds) == set(out.ids_masked[b].tolist())
        assert not set(out.ids_keep[b].tolist()) & set().union(*folds)
    # each fold equals the teacher run on that fold alone (own cls, nothing else)
    one_fold = FoldedEMATeacher(model.teacher.module, num_folds=1)  # the same weights
    for f in range(3):
        ref = one_fold(x, fold_ids[:, f]).tokens
        assert torch.allclose(out.target[:, 9 * f:9 * (f + 1)], ref, atol=1e-5)
    # changing a patch of fold 0 changes fold 0's targets only
    pid = int(fold_ids[0, 0, 0])
    x2 = x.clone()
    r, c = divmod(pid, 6)
    x2[0, :, 16 * r:16 * (r + 1), 16 * c:16 * (c + 1)] += 3.
    t2 = model.teacher(x2, out.ids_masked).tokens
    assert not torch.allclose(t2[0, :9], out.target[0, :9], atol=1e-4)
    assert torch.allclose(t2[0, 9:], out.target[0, 9:], atol=1e-5)


def test_student_predictions_line_up_with_teacher_positions():
    model = build_tiny().eval()
    x = torch.randn(2, 3, 96, 96)
    torch.manual_seed(1)
    out = model.reconstruct(x)
    assert torch.equal(out.ids_pred, out.ids_masked)  # full decoder: every masked patch
    assert out.pred.shape == out.target.shape == (2, 27, 64)
    # prediction j belongs to patch ids_masked[:, j]: permuting the ids permutes the predictions
    perm = torch.randperm(27)
    pred = model.neck(out.latent, out.ids_keep, out.ids_masked[:, perm])
    assert torch.allclose(pred, out.pred[:, perm], atol=1e-5)
    # and the loss is the head on those aligned pairs
    torch.manual_seed(1)
    model.train()
    model.backbone.eval()  # no drop path, same forward as above
    loss = model.loss(x, [])['loss']
    assert torch.allclose(loss, model.head.loss(out.pred, out.target), atol=1e-5)


def test_official_token_axis_cosine_option():
    model = build_tiny(head=dict(cos_dim=1, num_folds=3))
    loss = model.loss(torch.randn(2, 3, 96, 96), [])['loss']
    assert loss.ndim == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match='num_folds=3'):
        build_tiny(head=dict(cos_dim=1, num_folds=1))


def test_folds_not_dividing_the_masked_count_are_a_clear_error():
    with pytest.raises(ValueError, match='num_folds=4 does not divide the 27 masked'):
        build_tiny(num_folds=4)


def test_training_without_hook_fails_loudly():
    model = build_tiny()
    model.teacher.total_updates = None
    with pytest.raises(RuntimeError, match='EMATeacherHook'):
        model.loss(torch.randn(1, 3, 96, 96), [])


def test_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = build_tiny(backbone=dict(drop_path_rate=0.0))
    model.train()
    x = torch.randn(2, 3, 96, 96)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(15):
        torch.manual_seed(0)  # the same masks every step: a truly fixed batch
        loss = model.loss(x, [])['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0], losses


def test_vit_b_recipe_token_flow():
    cfg = Config.fromfile(ROOT + '/configs/sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py')
    assert cfg.train_dataloader.batch_size == 96
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(2.666e-4 * 3)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.04
    assert cfg.param_scheduler[0].end == 60 and cfg.train_cfg.max_epochs == 300
    # ViT-B widths and 224 px (196 patches); 2 encoder / 1 decoder blocks keep the test fast
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.model.backbone.arch = dict(embed_dims=768, num_layers=2, num_heads=12,
                                   feedforward_channels=3072)
    cfg.model.neck.depth = 1
    model = MODELS.build(cfg.model)
    model.init_weights()
    seen = []
    model.neck.decoder_blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    out = model.reconstruct(torch.randn(1, 3, 224, 224))
    assert out.pred.shape == out.target.shape == (1, 147, 768)
    assert seen == [torch.Size([1, 1 + 49 + 147, 512])]
