# SdAE ViT-B/16 (300 ep) -> ImageNet-1k fine-tuning, 100 epochs (paper, reported: 84.1% top-1).
_base_ = '../../benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'
checkpoint = 'work_dirs/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
