# ImageNet-1k end-to-end fine-tuning of a pcae_mm pre-trained ViT-B/16 (MAE's recipe):
# 100 epochs (5 warmup), total batch 1024 (8 GPUs x 128), AdamW lr 5e-4 x 1024 / 256 = 2e-3,
# wd 0.05, layer-wise lr decay 0.65, drop path 0.1, RandAugment, mixup 0.8, cutmix 1.0,
# label smoothing 0.1, global average pooling (fc_norm = ln2, no final ln1).
# Set the checkpoint: --cfg-options model.backbone.init_cfg.checkpoint=PATH, or inherit this file
# (see configs/pcae/benchmarks/). The load is verified: it logs how many backbone tensors were
# loaded and raises when fewer than `min_share` of them are found under `prefix`.
_base_ = [
    '../../_base_/datasets/imagenet_bs128_mae-finetune-224.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MIMViT',
        masking=False,  # plain ViT forward (ImageClassifier calls backbone(x))
        arch='b',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        fixed_pos_embed=False,  # the pre-trained sin-cos table becomes a learned embedding
        final_norm=False,
        out_type='avg_featmap',
        # PTR at fine-tune / inference (PCAE Table 5): token_reduction=dict(locations=[...],
        # keep_ratio=...); the PTR fine-tune configs inherit this file and set it (no key here:
        # a None base value would block their dict merge).
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 256, weight_decay=0.05, betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))

warmup_epochs = 5
max_epochs = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=1e-6, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024, enable=False)

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)

# Fail before the first iteration when head.num_classes < the dataset's classes.
custom_hooks = [dict(type='NumClassesCheckHook')]
