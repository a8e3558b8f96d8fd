# Tiny MAE (PixelMAE) for CPU: a 96 px, 4-block, 64-wide ViT on the small ImageNet-layout
# dataset that `tools/demo.py` generates under data/tiny_imagenet. 36 patches, 9 visible,
# 27 masked -> decoder on 1 + 9 + 27 = 37 tokens.
_base_ = './mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'

img_size = 96
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4))

data_root = 'data/tiny_imagenet/'
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

# fp32 on CPU; tools/train.py --amp switches to AmpOptimWrapper on a GPU.
optim_wrapper = dict(_delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 8 / 256 * 10, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))
max_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(logger=dict(type='LoggerHook', interval=5))
