# PR-MIM ViT-B/16, throw 50% (300 ep) -> ADE20K UperNet, 160k iterations, 512 x 512,
# single-scale mIoU.
_base_ = '../../benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
checkpoint = 'work_dirs/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
