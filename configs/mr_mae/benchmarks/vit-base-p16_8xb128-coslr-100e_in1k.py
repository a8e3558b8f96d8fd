# MR-MAE ViT-B/16 (200 ep) -> ImageNet-1k fine-tuning, 100 epochs (paper: 85.0% top-1).
_base_ = '../../benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'
checkpoint = 'work_dirs/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k/epoch_200.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
