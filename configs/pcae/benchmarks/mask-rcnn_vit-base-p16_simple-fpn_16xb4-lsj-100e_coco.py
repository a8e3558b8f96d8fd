# PCAE ViT-B/16 (300 ep) -> COCO Mask R-CNN, ViTDet LSJ 100 epochs.
# Paper (its own detection recipe, not this one): 47.6 APbox / 42.0 APmask.
_base_ = '../../benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py'
checkpoint = 'work_dirs/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
