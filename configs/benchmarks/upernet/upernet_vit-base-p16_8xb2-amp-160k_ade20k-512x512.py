# ADE20K UperNet from a pcae_mm pre-trained ViT-B/16 (MAE's segmentation protocol): 512 x 512
# crops, 160k iterations at total batch 16 (8 GPUs x 2), AdamW lr 1e-4, wd 0.05, layer-wise lr
# decay 0.65, drop path 0.1, 1500-iter linear warmup then poly decay, AMP; slide inference with
# 512 crops and stride 341; single-scale mIoU.
# Set model.backbone.init_cfg.checkpoint (see configs/pcae/benchmarks/); the load is verified.
_base_ = [
    '../../_base_/models/upernet_vit-base-p16.py',
    '../../_base_/datasets/ade20k_512x512.py',
    '../../_base_/default_runtime_seg.py',
]

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmpretrain.ViTLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        flat_decay_mult=0.0,  # biases and norms: no weight decay (mmseg / BEiT convention)
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))

max_iters = 160000
interval = 16000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
auto_scale_lr = dict(base_batch_size=16, enable=False)

# Fail before the first iteration when a head's num_classes < the dataset's classes.
custom_hooks = [dict(type='mmpretrain.NumClassesCheckHook')]
