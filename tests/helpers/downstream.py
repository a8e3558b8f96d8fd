"""Helpers for the downstream tests: a real pcae_mm pre-training checkpoint (tools/train.py on
the tiny PCAE config) and weight checks. The tiny COCO / ADE20K sets and CPU-sized configs come
tools/tiny_data (shared with tools/demo.py)."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.hooks import Hook

from . import ROOT, tiny_config, tool_env

# The tiny PCAE encoder (configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py).
TINY_ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256)
TINY_IMG = 96


def pretrain_pcae(work: str, tiny_imagenet: str) -> str:
    """One epoch of tools/train.py on the tiny PCAE config: a real pre-training checkpoint."""
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', tiny_config('pcae'), '--work-dir', work, '--cfg-options',
         f'train_dataloader.dataset.data_root={tiny_imagenet}', 'train_cfg.max_epochs=1'],
        cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    path = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(path)
    return path


def checkpoint_backbone(path: str, prefix: str = 'backbone.') -> dict:
    state = torch.load(path, map_location='cpu')['state_dict']
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class RecordBackboneHook(Hook):
    """Copy the backbone's tensors right after weight init / loading (before iteration 1), and
    keep the metrics of the last validation."""

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.state = None
        self.metrics = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = metrics

    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.state = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def assert_backbone_equals_checkpoint(state: dict, ckpt: dict, new_keys=()) -> int:
    """Every backbone tensor that exists in the checkpoint equals it; the rest are `new_keys`.

    Returns:
        int: number of tensors compared.
    """
    compared = 0
    for key, value in state.items():
        if key not in ckpt:
            assert any(n in key for n in new_keys), f'{key} was not loaded from the checkpoint'
            continue
        assert value.shape == ckpt[key].shape, key
        assert torch.equal(value, ckpt[key]), f'{key} differs from the checkpoint'
        compared += 1
    return compared
