# ImageNet-1k linear probing of a pcae_mm pre-trained ViT-B/16 (MAE's recipe): frozen encoder,
# cls token after the final norm, BatchNorm (no affine) + linear classifier, LARS lr 0.1 x
# 16384 / 256 = 6.4, no weight decay, 90 epochs (10 warmup), total batch 16384 (8 x 2048),
# RandomResizedCrop + flip only. Set model.backbone.init_cfg.checkpoint (see
# configs/pcae/benchmarks/); the load is verified (see pcae_mm/utils/pretrained.py).
_base_ = [
    '../../_base_/datasets/imagenet_bs128_mae-finetune-224.py',
    '../../_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=2048, drop_last=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=256, drop_last=False)
test_dataloader = val_dataloader

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MIMViT',
        masking=False,  # plain ViT forward (ImageClassifier calls backbone(x))
        arch='b',
        img_size=224,
        patch_size=16,
        fixed_pos_embed=False,
        frozen_stages=12,  # the whole encoder, final norm included
        final_norm=True,
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))

warmup_epochs = 10
max_epochs = 90
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16384, enable=False)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)

# Fail before the first iteration when head.num_classes < the dataset's classes.
custom_hooks = [dict(type='NumClassesCheckHook')]
