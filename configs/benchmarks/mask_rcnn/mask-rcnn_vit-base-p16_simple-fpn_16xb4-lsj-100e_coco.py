# COCO Mask R-CNN from a pcae_mm pre-trained ViT-B/16, ViTDet recipe (arXiv:2203.16527, the
# setting of MAE's reference 51.6 APbox / 45.7 APmask): LSJ 1024, 100 epochs = 184,375 iters at
# total batch 64 (16 GPUs x 4), AdamW lr 1e-4, wd 0.1, layer-wise lr decay 0.7, drop path 0.1,
# lr x0.1 at 88.9% and 96.3%, AMP. Why this recipe: configs/benchmarks/README.md.
# Set model.backbone.init_cfg.checkpoint (see configs/pcae/benchmarks/); the load is verified.
_base_ = [
    '../../_base_/models/mask-rcnn_vit-base-p16_simple-fpn.py',
    '../../_base_/datasets/coco_instance_lsj-1024.py',
    '../../_base_/default_runtime_det.py',
]

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(
        layer_decay_rate=0.7,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'rel_pos': dict(decay_mult=0.),
        }))

max_iters = 184375
interval = 5000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=3))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# Linear lr scaling when the total batch is not 64: --auto-scale-lr (tools/train.py).
auto_scale_lr = dict(base_batch_size=64, enable=False)

# Fail before the first iteration when a head's num_classes < the dataset's classes.
custom_hooks = [dict(type='mmpretrain.NumClassesCheckHook')]
