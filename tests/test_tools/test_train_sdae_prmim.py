"""SdAE and PR-MIM tiny configs through tools/train.py: train, save, resume, downstream keys.

Each subprocess spends most of its time importing torch / mmpretrain: SdAE and PR-MIM (on MAE)
train and resume (4 processes); PR-MIM on SdAE trains one epoch through tools/train.py (its
pieces are checked in detail in-process by tests/test_models/test_algorithms/test_pr_mim.py).
"""
import os.path as osp
import sys

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

from tests.helpers import tiny_config
from tests.helpers.cli import load, run

TINY_SDAE, TINY_PRMIM, TINY_PRMIM_SDAE = map(tiny_config, ('sdae', 'pr_mim', 'pr_mim_sdae'))
TINY_ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256)


def train(config, work_dir, data_root, epochs, *extra):
    return run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
                '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
                f'train_cfg.max_epochs={epochs}', *extra])


def assert_backbone_flows_downstream(path, state_dict):
    """Same keys as mmpretrain's VisionTransformer, and the downstream fine-tune backbone
    (what configs/*/benchmarks build) loads every encoder tensor with prefix 'backbone.'."""
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    vit = VisionTransformer(arch=TINY_ARCH, img_size=96, patch_size=16)
    result = vit.load_state_dict(backbone, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    finetune = MODELS.build(dict(
        type='MIMViT', arch=TINY_ARCH, img_size=96, masking=False, fixed_pos_embed=False,
        out_type='avg_featmap', final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    finetune.init_weights()
    state = finetune.state_dict()
    for key in finetune.pretrained_report.loaded:
        assert torch.equal(state[key], backbone[key]), key
    assert finetune.pretrained_report.share > 0.8


def test_sdae_trains_saves_and_resumes_with_per_epoch_ema(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'sdae')
    train(TINY_SDAE, work, tiny_imagenet, 1)
    ckpt1 = load(osp.join(work, 'epoch_1.pth'))
    assert ckpt1['meta']['iter'] == 2  # 16 images / batch 8
    assert int(ckpt1['state_dict']['teacher.steps']) == 1  # one EMA update per epoch

    log = train(TINY_SDAE, work, tiny_imagenet, 2, '--resume')
    assert 'resumed' in log.lower()
    ckpt2 = load(osp.join(work, 'epoch_2.pth'))
    assert ckpt2['meta']['epoch'] == 2 and ckpt2['meta']['iter'] == 4
    assert int(ckpt2['state_dict']['teacher.steps']) == 2
    assert_backbone_flows_downstream(osp.join(work, 'epoch_2.pth'), ckpt2['state_dict'])


def test_pr_mim_trains_saves_and_resumes_with_progressive_schedule(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'prmim')
    log = train(TINY_PRMIM, work, tiny_imagenet, 1, 'default_hooks.logger.interval=1')
    assert 'loss_progressive' in log and 'progressive_share' in log
    ckpt1 = load(osp.join(work, 'epoch_1.pth'))
    assert any(k.startswith('partial_reconstruction.proj') for k in ckpt1['state_dict'])

    log = train(TINY_PRMIM, work, tiny_imagenet, 2, 'default_hooks.logger.interval=1',
                '--resume')
    assert 'resumed' in log.lower() and 'Epoch(train) [2][2/2]' in log
    ckpt2 = load(osp.join(work, 'epoch_2.pth'))
    assert ckpt2['meta']['iter'] == 4
    assert_backbone_flows_downstream(osp.join(work, 'epoch_2.pth'), ckpt2['state_dict'])



def test_pr_mim_on_sdae_trains_through_the_cli(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'prmim_sdae')
    log = train(TINY_PRMIM_SDAE, work, tiny_imagenet, 1, 'default_hooks.logger.interval=1')
    assert 'loss_progressive' in log
    ckpt = load(osp.join(work, 'epoch_1.pth'))
    assert int(ckpt['state_dict']['teacher.steps']) == 1  # SdAE's per-epoch EMA
    assert any(k.startswith('partial_reconstruction.proj') for k in ckpt['state_dict'])
    assert_backbone_flows_downstream(osp.join(work, 'epoch_1.pth'), ckpt['state_dict'])
