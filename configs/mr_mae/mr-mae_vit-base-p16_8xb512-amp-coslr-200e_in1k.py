# MR-MAE ViT-B/16, 200 epochs. Paper (reported): 85.0% IN-1k fine-tuned top-1.
_base_ = './mr-mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'

warmup_epochs = 20
max_epochs = 200
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
