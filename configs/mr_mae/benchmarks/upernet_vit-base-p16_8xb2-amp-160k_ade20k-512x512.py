# MR-MAE ViT-B/16 (200 ep) -> ADE20K UperNet, 160k iterations.
_base_ = '../../benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
checkpoint = 'work_dirs/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k/epoch_200.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
