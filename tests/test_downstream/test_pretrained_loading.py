"""Verified loading: counts, loud failures, position-embedding interpolation, bad input."""
import pytest
import torch
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from tests.helpers.downstream import TINY_ARCH
from pcae_mm.utils.pretrained import load_pretrained, resize_pos_embed_to


def pretraining_checkpoint(tmp_path, img_size=96):
    """A pcae_mm-layout checkpoint: backbone + teacher + decoder tensors, as PCAE saves."""
    vit = MODELS.build(dict(type='MIMViT', arch=TINY_ARCH, img_size=img_size))
    vit.init_weights()
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state.update({f'teacher.module.{k}': v + 1 for k, v in vit.state_dict().items()})
    state['neck.mask_token'] = torch.zeros(1, 1, 64)
    path = str(tmp_path / 'pretrain.pth')
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, path)
    return path, vit.state_dict()


def finetune_vit(ckpt, **init):
    cfg = dict(type='MIMViT', arch=TINY_ARCH, img_size=96, masking=False, fixed_pos_embed=False,
               out_type='avg_featmap', final_norm=False,
               init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.', **init))
    return MODELS.build(cfg)


def test_every_backbone_tensor_loads_and_is_reported(tmp_path):
    path, ref = pretraining_checkpoint(tmp_path)
    vit = finetune_vit(path)
    vit.init_weights()
    state = vit.state_dict()
    for key in ref:
        if key in state:
            assert torch.equal(state[key], ref[key]), key
    report = vit.pretrained_report
    assert len(report.loaded) == len(ref) - 2 and report.total == len(state)
    assert report.unused == ['ln1.bias', 'ln1.weight'] and report.missing == ['ln2.bias',
                                                                               'ln2.weight']
    # the EMA teacher of the same file loads with its prefix
    teacher = finetune_vit(path)
    teacher.init_cfg['prefix'] = 'teacher.module.'
    teacher.init_weights()
    assert torch.equal(teacher.state_dict()['cls_token'], ref['cls_token'] + 1)


def test_missing_or_empty_checkpoint_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        finetune_vit(str(tmp_path / 'nope.pth')).init_weights()
    with pytest.raises(ValueError, match='empty checkpoint path'):
        finetune_vit('').init_weights()


def test_checkpoint_without_backbone_keys_names_what_it_has(tmp_path):
    path, _ = pretraining_checkpoint(tmp_path)
    state = torch.load(path)['state_dict']
    torch.save({'model': {k[len('backbone.'):]: v for k, v in state.items()
                          if k.startswith('backbone.')}}, tmp_path / 'bare.pth')
    with pytest.raises(KeyError, match=r"prefix 'backbone\.'.*'layers\.'.*model_converters"):
        finetune_vit(str(tmp_path / 'bare.pth')).init_weights()
    vit = finetune_vit(str(tmp_path / 'bare.pth'))
    vit.init_cfg['prefix'] = ''  # a bare backbone state dict loads with prefix ''
    vit.init_weights()
    assert len(vit.pretrained_report.loaded) == len(vit.state_dict()) - 2


def test_wrong_layout_loads_nothing_and_raises(tmp_path):
    path, _ = pretraining_checkpoint(tmp_path)
    state = torch.load(path)['state_dict']
    # timm names under the right prefix: nothing matches (mmseg's MAE would load this silently)
    renamed = {k.replace('layers.', 'blocks.').replace('patch_embed.projection', 'patch_embed.proj')
               .replace('cls_token', 'cls').replace('pos_embed', 'pos'): v
               for k, v in state.items()}
    torch.save({'state_dict': renamed}, tmp_path / 'timm.pth')
    with pytest.raises(RuntimeError, match=r'loaded 0/\d+ backbone tensors'):
        finetune_vit(str(tmp_path / 'timm.pth')).init_weights()
    # a partial match below min_share raises too; lowering min_share accepts it
    partial = {k: v for k, v in state.items()
               if k.startswith(('backbone.layers.0.', 'backbone.layers.1.'))}
    torch.save({'state_dict': partial}, tmp_path / 'partial.pth')
    with pytest.raises(RuntimeError, match=r'min_share=0.8'):
        finetune_vit(str(tmp_path / 'partial.pth')).init_weights()
    vit = finetune_vit(str(tmp_path / 'partial.pth'), min_share=0.3)
    vit.init_weights()
    assert len(vit.pretrained_report.loaded) == 24


def test_different_architecture_is_a_clear_error(tmp_path):
    path, _ = pretraining_checkpoint(tmp_path)
    cfg = dict(type='MIMViT', arch=dict(TINY_ARCH, feedforward_channels=128), img_size=96,
               init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    with pytest.raises(ValueError, match=r'ffn\.layers\.0\.0\.weight: checkpoint \(256, 64\) '
                                         r'vs model \(128, 64\)'):
        MODELS.build(cfg).init_weights()


def test_image_size_change_interpolates_position_embedding(tmp_path):
    """Pre-trained at 96 px (6 x 6), fine-tuned at 128 px (8 x 8): pos_embed is resized."""
    path, ref = pretraining_checkpoint(tmp_path)
    vit = MODELS.build(dict(
        type='MIMViT', arch=TINY_ARCH, img_size=128, masking=False, fixed_pos_embed=False,
        out_type='avg_featmap', final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.')))
    vit.init_weights()
    assert vit.pretrained_report.resized == ['pos_embed']
    pos = vit.state_dict()['pos_embed']
    assert pos.shape == (1, 1 + 64, 64)
    assert torch.equal(pos[:, :1], ref['pos_embed'][:, :1])  # cls slot kept
    torch.testing.assert_close(pos, resize_pos_embed_to(ref['pos_embed'], pos.shape))
    assert vit(torch.randn(1, 3, 128, 128))[0].shape == (1, 64)
    # and the plain forward of a 96 px model accepts other sizes by interpolation
    small = finetune_vit(path)
    small.init_weights()
    assert small(torch.randn(1, 3, 128, 128))[0].shape == (1, 64)


def test_load_pretrained_rejects_bad_min_share(tmp_path):
    path, _ = pretraining_checkpoint(tmp_path)
    with pytest.raises(ValueError, match='min_share'):
        load_pretrained(finetune_vit(path), path, min_share=1.5)
    with pytest.raises(ValueError, match=r"unknown keys \['strict'\]"):
        finetune_vit(path, strict=True).init_weights()
