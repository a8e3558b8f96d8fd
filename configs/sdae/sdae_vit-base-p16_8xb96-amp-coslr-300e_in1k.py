# SdAE ViT-B/16, ImageNet-1k, 300 epochs, total batch 768 (8 GPUs x 96), AMP.
# Paper recipe: base lr 2.666e-4 x 768 / 256, warmup 60 epochs, wd 0.04, drop path 0.25,
# AdamW(0.9, 0.95). Reported: 84.1% IN-1k fine-tune, 48.6 mIoU ADE20K (UperNet), 48.9 AP COCO.
_base_ = [
    '../_base_/models/sdae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mim.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

train_dataloader = dict(batch_size=96)

optim_wrapper = dict(
    optimizer=dict(lr=2.666e-4 * 768 / 256, betas=(0.9, 0.95), weight_decay=0.04))

warmup_epochs = 60
max_epochs = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=768, enable=False)

default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
