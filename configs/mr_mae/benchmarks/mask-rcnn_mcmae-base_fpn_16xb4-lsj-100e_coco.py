# MR-MCMAE (400 ep) -> COCO Mask R-CNN with the hybrid encoder's multi-scale features (paper:
# 53.4 APbox, its own recipe). Stage maps at strides 4 / 8 / 16 (256 / 384 / 768 channels) feed a
# standard FPN whose extra levels (strides 32, 64) are max-pooled. Stride-16 blocks use global
# attention on the 64 x 64 grid (sin-cos pos_embed interpolated from 14 x 14).
_base_ = '../../benchmarks/mask_rcnn/mask-rcnn_vit-base-p16_simple-fpn_16xb4-lsj-100e_coco.py'
checkpoint = 'work_dirs/mr-mcmae_convvit-base_8xb512-amp-coslr-400e_in1k/epoch_400.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MCMAEViT',
        arch='base',
        img_size=224,
        masking=False,
        out_indices=(0, 1, 2),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[256, 384, 768],
        out_channels=256,
        num_outs=5))
