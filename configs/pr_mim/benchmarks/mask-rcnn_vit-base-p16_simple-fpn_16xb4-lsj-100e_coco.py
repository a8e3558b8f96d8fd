# PR-MIM ViT-B/16, throw 50% (300 ep) -> COCO Mask R-CNN, ViTDet LSJ 100 epochs.
# No paper number to compare with (PR-MIM reports ImageNet accuracy and cost).
_base_ = '../../benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py'
checkpoint = 'work_dirs/pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
