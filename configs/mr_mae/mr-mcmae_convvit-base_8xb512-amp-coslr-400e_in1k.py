# MR-MCMAE (ConvMAE-style hybrid encoder), 400 epochs, total batch 4096, AMP.
# Paper (reported): 85.8% IN-1k fine-tuned top-1; COCO 53.4 APbox.
_base_ = [
    '../_base_/models/mr_mcmae_convvit-base.py',
    '../_base_/datasets/imagenet_bs512_mim.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

warmup_epochs = 40
max_epochs = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
