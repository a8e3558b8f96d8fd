# PCAE ViT-B/16 (300 ep) -> ImageNet-1k linear probing, 90 epochs.
_base_ = '../../benchmarks/classification/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py'
checkpoint = 'work_dirs/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
