"""One real pcae_mm pre-training checkpoint into every downstream task, with the shipped configs.

The checkpoint comes from tools/train.py (tiny PCAE config, 1 epoch). Each test loads a
configs/benchmarks/ config, shrinks only sizes (tiny ViT, tiny images, 2 iterations) and data
paths, runs the toolbox's real train loop and evaluator through mmengine's Runner, and checks
that every backbone weight right after loading equals the checkpoint's.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from tests.helpers.downstream import (ROOT, TINY_ARCH, TINY_IMG, RecordBackboneHook,
                                      assert_backbone_equals_checkpoint, checkpoint_backbone,
                                      pretrain_pcae)
from tools.tiny_data import (COCO_CLASSES, make_tiny_ade, make_tiny_coco, tiny_classification,
                             tiny_mask_rcnn, tiny_upernet)

BENCH = osp.join(ROOT, 'configs/benchmarks')


@pytest.fixture(scope='module')
def pcae_checkpoint(tmp_path_factory, tiny_imagenet) -> str:
    return pretrain_pcae(str(tmp_path_factory.mktemp('pcae_pretrain')), tiny_imagenet)


@pytest.fixture(autouse=True)
def restore_default_scope():
    """A Runner leaves its scope ('mmdet', 'mmseg') as the current default scope, which would
    send later plain `MODELS.build` calls of other tests to the wrong registry."""
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


def train_and_eval(cfg: Config):
    """Train (val at the end) with a hook recording the backbone right after loading."""
    record = RecordBackboneHook()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(record, priority='HIGHEST')
    runner.train()  # validates at the end (val_interval)
    assert record.metrics, 'no validation ran'
    return runner, record.state, record.metrics


# ----------------------------------------------------------------------------- ImageNet
def classification_cfg(path: str, ckpt: str, data_root: str, work_dir: str) -> Config:
    return tiny_classification(Config.fromfile(path), ckpt, data_root, TINY_ARCH, TINY_IMG,
                               num_classes=4, work_dir=work_dir)


def test_imagenet_finetune_from_pcae_checkpoint(pcae_checkpoint, tiny_imagenet, tmp_path):
    cfg = classification_cfg(osp.join(BENCH, 'classification/vit-base-p16_8xb128-coslr-100e_in1k.py'),
                             pcae_checkpoint, tiny_imagenet, str(tmp_path))
    runner, loaded, metrics = train_and_eval(cfg)
    ckpt = checkpoint_backbone(pcae_checkpoint)
    # the fine-tune backbone has no final ln1 (global pool + fc_norm ln2, MAE recipe)
    n = assert_backbone_equals_checkpoint(loaded, ckpt, new_keys=('ln2.', ))
    assert n == len(loaded) - 2 and 'ln1.weight' not in loaded
    report = runner.model.backbone.pretrained_report
    assert report.unused == ['ln1.bias', 'ln1.weight'] and report.missing == ['ln2.bias',
                                                                               'ln2.weight']
    assert 0 <= metrics['accuracy/top1'] <= 100
    # it trained: weights moved, lrs follow the layer decay (embeddings lowest)
    after = runner.model.backbone.state_dict()
    assert not torch.equal(after['layers.3.attn.qkv.weight'], ckpt['layers.3.attn.qkv.weight'])
    groups = runner.optim_wrapper.optimizer.param_groups
    scale = {g['param_name']: g['lr_scale'] for g in groups}
    assert scale['backbone.pos_embed'] == pytest.approx(0.65**5)
    assert scale['backbone.layers.3.ln1.weight'] == pytest.approx(0.65)
    assert scale['head.fc.weight'] == 1


def test_linear_probe_keeps_the_encoder_frozen(pcae_checkpoint, tiny_imagenet, tmp_path):
    cfg = classification_cfg(
        osp.join(BENCH, 'classification/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'),
        pcae_checkpoint, tiny_imagenet, str(tmp_path))
    cfg.model.backbone.frozen_stages = TINY_ARCH['num_layers']
    cfg.optim_wrapper.optimizer.lr = 0.1
    runner, loaded, metrics = train_and_eval(cfg)
    ckpt = checkpoint_backbone(pcae_checkpoint)
    assert assert_backbone_equals_checkpoint(loaded, ckpt) == len(ckpt)
    after = runner.model.backbone.state_dict()
    for key, value in ckpt.items():
        assert torch.equal(after[key], value), f'{key} changed during linear probing'
    assert 0 <= metrics['accuracy/top1'] <= 100


def test_num_classes_smaller_than_dataset_is_a_clear_error(pcae_checkpoint, tiny_imagenet,
                                                           tmp_path):
    cfg = classification_cfg(osp.join(BENCH, 'classification/vit-base-p16_8xb128-coslr-100e_in1k.py'),
                             pcae_checkpoint, tiny_imagenet, str(tmp_path))
    cfg.model.head.num_classes = 2
    with pytest.raises(ValueError, match=r'head.num_classes=2 but the train dataset has 4'):
        Runner.from_cfg(cfg).train()


# ----------------------------------------------------------------------------- COCO
def test_coco_mask_rcnn_from_pcae_checkpoint(pcae_checkpoint, tmp_path):
    data = make_tiny_coco(str(tmp_path / 'coco'))
    cfg = tiny_mask_rcnn(
        Config.fromfile(
            osp.join(BENCH, 'mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py')),
        pcae_checkpoint, data, TINY_ARCH, TINY_IMG, COCO_CLASSES, str(tmp_path / 'work'))
    assert cfg.optim_wrapper.type == 'OptimWrapper' or torch.cuda.is_available()

    runner, loaded, metrics = train_and_eval(cfg)
    ckpt = checkpoint_backbone(pcae_checkpoint)
    # window attention adds zero-initialised relative positions; no cls token, no final norm
    n = assert_backbone_equals_checkpoint(loaded, ckpt, new_keys=('rel_pos_', ))
    assert n == len(ckpt) - 3  # cls_token, ln1.weight, ln1.bias unused
    report = runner.model.backbone.pretrained_report
    assert report.unused == ['cls_token', 'ln1.bias', 'ln1.weight']
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in metrics and 0 <= metrics[key] <= 1, (key, metrics)
    groups = {g['param_name']: g for g in runner.optim_wrapper.optimizer.param_groups}
    assert groups['backbone.pos_embed']['lr_scale'] == pytest.approx(0.7**5)
    assert groups['backbone.layers.0.attn.rel_pos_h']['weight_decay'] == 0
    assert groups['neck.stages.0.0.weight']['lr_scale'] == 1


# ----------------------------------------------------------------------------- ADE20K
def test_ade20k_upernet_from_pcae_checkpoint(pcae_checkpoint, tmp_path):
    data = make_tiny_ade(str(tmp_path / 'ade'))
    cfg = tiny_upernet(
        Config.fromfile(
            osp.join(BENCH, 'upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py')),
        pcae_checkpoint, data, TINY_ARCH, TINY_IMG, str(tmp_path / 'work'))

    runner, loaded, metrics = train_and_eval(cfg)
    ckpt = checkpoint_backbone(pcae_checkpoint)
    n = assert_backbone_equals_checkpoint(loaded, ckpt)
    assert n == len(ckpt) - 2  # final norm unused (features come from the blocks)
    assert 0 <= metrics['mIoU'] <= 100, metrics
    groups = {g['param_name']: g for g in runner.optim_wrapper.optimizer.param_groups}
    assert groups['backbone.layers.0.ln1.weight']['lr_scale'] == pytest.approx(0.65**4)
    assert groups['backbone.cls_token']['weight_decay'] == 0
    assert groups['decode_head.conv_seg.weight']['lr_scale'] == 1
