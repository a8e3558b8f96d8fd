# MR-MCMAE (ConvMAE-style hybrid encoder), 400 epochs, total batch 4096, AMP: the MR-MAE ViT-B
# 400-epoch recipe (data, schedule, CLIP + DINO teachers, mimic heads) with another encoder.
# Paper (reported): 85.8% IN-1k fine-tuned top-1; COCO 53.4 APbox.
# Encoder: 4x4 embed -> 2 masked-conv blocks (56x56x256) -> 2x2 embed -> 2 masked-conv blocks
# (28x28x384) -> 2x2 embed -> 11 transformer blocks on the 49 visible tokens (14x14x768). The
# mask is sampled on 14x14 and upsampled to the convolution stages. Stage-1/2 maps reach the
# decoder as skips (4x4 / 2x2 strided projections gathered at the visible ids).
_base_ = './mr-mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'

model = dict(
    type='MRMCMAE',
    backbone=dict(
        _delete_=True,
        type='MCMAEViT',
        arch='base',
        img_size=224,
        mask_ratio=0.75),
    neck=dict(
        type='MultiScaleSkipDecoder',
        skip_channels=(256, 384),
        skip_strides=(4, 2)))
