# MAE-style pre-training schedule: AdamW(0.9, 0.95), wd 0.05, linear warmup then cosine, AMP.
# lr = base_lr (1.5e-4) x total batch / 256; the method configs set lr, epochs and warmup.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='TrainableParamsOptimWrapperConstructor',  # frozen teachers: one log line
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))

warmup_epochs = 40
max_epochs = 300
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# Set enable=True (or pass --auto-scale-lr) to rescale lr when the total batch is not 4096.
auto_scale_lr = dict(base_batch_size=4096, enable=False)
