"""tools/analysis/knn_eval.py: the offline kNN benchmark on a checkpoint (digits as a stand-in
for ImageNet: the config inherits configs/benchmarks/knn/ and swaps only sizes and data)."""
import json

import pytest
import torch

pytest.importorskip('sklearn')

from tests.helpers import ROOT  # noqa: E402

CFG = f"""
_base_ = '{ROOT}/configs/benchmarks/knn/vit-base-p16_knn-k20_in1k.py'
model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                                     feedforward_channels=256), img_size=32, patch_size=4))
loader = dict(batch_size=256, num_workers=0, persistent_workers=False,
              sampler=dict(type='DefaultSampler', shuffle=False),
              collate_fn=dict(type='default_collate'))
knn = dict(bank_per_class=50,
    bank_dataloader=dict(loader, dataset=dict(_delete_=True, type='DigitsDataset', split='train',
                                              pipeline=[dict(type='PackInputs')])),
    query_dataloader=dict(loader, dataset=dict(_delete_=True, type='DigitsDataset', split='val',
                                               pipeline=[dict(type='PackInputs')])))
"""


def test_knn_eval_on_a_checkpoint(tmp_path):
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import MODELS

    from tools.analysis.knn_eval import main
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='MIMViT', arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                                     feedforward_channels=256),
                            img_size=32, patch_size=4))
    vit.init_weights()
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in vit.state_dict().items()}}, ckpt)
    cfg = tmp_path / 'knn_digits.py'
    cfg.write_text(CFG)
    before = set(DefaultScope._instance_dict)
    try:
        res = main([str(cfg), '--checkpoint', ckpt, '--work-dir', str(tmp_path / 'work')])
    finally:
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)
    assert res['bank'] == 500 and res['queries'] == 497  # 50 per class, the val split
    assert 20.0 < res['student_top1'] <= 100.0 and res['student_top5'] >= res['student_top1']
    files = list((tmp_path / 'work').glob('*/knn.json'))
    assert files and json.load(open(files[0]))['student_top1'] == res['student_top1']
    with pytest.raises(FileNotFoundError):
        main([str(cfg), '--checkpoint', str(tmp_path / 'missing.pth')])
