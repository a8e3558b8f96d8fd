"""Tiny MR-MAE / MR-MCMAE through tools/train.py: train, save, resume, downstream loading."""
import glob
import os.path as osp
import sys

import pytest
import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401  (allow-lists mmengine checkpoint globals for torch.load)
from tests.helpers import random_teacher_options, tiny_config
from tests.helpers.cli import load, run
from tools import train as train_tool

TINY_MR_MAE, TINY_MR_MCMAE = tiny_config('mr_mae'), tiny_config('mr_mcmae')


def train(config, work_dir, data_root, epochs, teachers, *extra):
    return run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
                '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
                f'train_cfg.max_epochs={epochs}', *teachers, *extra])


def backbone_state(ckpt):
    return {k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()
            if k.startswith('backbone.')}


def test_mr_mae_trains_saves_resumes_and_loads_into_vit(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'work')
    teachers = random_teacher_options(TINY_MR_MAE, tmp_path)
    log = train(TINY_MR_MAE, work, tiny_imagenet, 1, teachers)
    for key in ('loss_pix', 'loss_mimic_clip', 'loss_mimic_dino'):
        assert key in log, log[-3000:]
    ckpt1 = load(osp.join(work, 'epoch_1.pth'))
    assert ckpt1['meta']['iter'] == 2  # 16 images / batch 8
    keys = ckpt1['state_dict'].keys()
    assert not any('teacher' in k for k in keys)  # frozen teachers are not saved
    assert {'mimic_heads.clip.proj.weight', 'mimic_heads.dino.proj.weight'} <= set(keys)

    log = train(TINY_MR_MAE, work, tiny_imagenet, 2, teachers, '--resume')
    assert 'resumed' in log.lower(), log[-3000:]
    ckpt2 = load(osp.join(work, 'epoch_2.pth'))
    assert ckpt2['meta']['epoch'] == 2 and ckpt2['meta']['iter'] == 4
    b1, b2 = backbone_state(ckpt1), backbone_state(ckpt2)
    assert any(not torch.equal(b1[k], b2[k]) for k in b1)  # training continued

    # same keys as MIMViT: the backbone loads into mmpretrain's VisionTransformer, strictly
    vit = VisionTransformer(arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                      feedforward_channels=256), img_size=96, patch_size=16)
    result = vit.load_state_dict(b2, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_mr_mcmae_trains_and_its_backbone_feeds_dense_prediction(tmp_path, tiny_imagenet):
    """In-process tools/train.py (the subprocess path is covered by the MR-MAE test)."""
    work = str(tmp_path / 'work')
    train_tool.main([TINY_MR_MCMAE, '--work-dir', work, '--cfg-options',
                       f'train_dataloader.dataset.data_root={tiny_imagenet}',
                       'train_cfg.max_epochs=1', *random_teacher_options(TINY_MR_MCMAE, tmp_path)])
    logs = glob.glob(osp.join(work, '*', '*.log'))
    log = open(logs[0]).read()
    assert 'loss_mimic_clip' in log and 'loss_mimic_dino' in log and 'loss_pix' in log
    path = osp.join(work, 'epoch_1.pth')
    ckpt = backbone_state(load(path))
    backbone = MODELS.build(dict(
        type='MCMAEViT', arch=dict(embed_dims=[32, 48, 64], depths=[1, 1, 2], num_heads=4),
        img_size=96, masking=False, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                  prefix='backbone.')))
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, ckpt[k]), k
    outs = backbone(torch.randn(1, 3, 96, 96))
    assert [o.shape[1:] for o in outs] == [(32, 24, 24), (48, 12, 12), (64, 6, 6)]


def test_missing_teacher_checkpoint_is_a_clear_error(tmp_path, tiny_imagenet):
    """tools/train.py (in-process: the error comes before any training) names the teacher."""
    missing = str(tmp_path / 'clip_missing.pth')
    with pytest.raises(FileNotFoundError) as err:
        train_tool.main([TINY_MR_MAE, '--work-dir', str(tmp_path), '--cfg-options',
                   f'train_dataloader.dataset.data_root={tiny_imagenet}',
                   f'model.teachers.clip.checkpoint={missing}'])
    msg = str(err.value)
    assert "teacher 'clip'" in msg and missing in msg and 'never downloaded' in msg
