# MR-MAE ViT-B/16 (200 ep) -> COCO Mask R-CNN, ViTDet LSJ 100 epochs.
_base_ = '../../benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py'
checkpoint = 'work_dirs/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k/epoch_200.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
