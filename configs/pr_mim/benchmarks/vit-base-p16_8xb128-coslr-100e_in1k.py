# PR-MIM ViT-B/16, throw 50% (300 ep) -> ImageNet-1k fine-tuning, 100 epochs.
# Paper (reported): lossless vs MAE.
_base_ = '../../benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'
checkpoint = 'work_dirs/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
