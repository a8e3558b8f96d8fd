# What every tiny CPU config (configs/*/*tiny*.py) shares: 96 px images from the small
# ImageNet-layout set the demo (tools/demo.py) writes, batch 8, fp32 AdamW, 1 warm-up epoch then
# cosine. tools/train.py --amp switches to AmpOptimWrapper on a GPU.
# Not here: the EMA teachers' time scale. A momentum is a time scale in updates (0.9999: 10,000),
# and a tiny run is 1,000 times shorter than its recipe, so each tiny config with an EMA teacher
# gives its recipe's horizon as a share of the run instead (PCAE `teacher=dict(momentum=None,
# horizon=0.1065)`, SdAE 0.0833 -> 0.333; pcae_mm/models/teachers/ema.py), one value per recipe.
#
# A tiny config lists this file AFTER its full recipe and takes every value in with one line,
#     globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})
# (`tiny_<name>` here becomes `<name>` there; a config file is Python run with `_base_` bound to
# the merged bases), then changes what it needs (SdAE: its lr; MR-MAE: 2 epochs).
# Why the `tiny_` names and not the real keys: mmengine (0.10.7) refuses one key in two bases,
#     KeyError: "Duplicate key is not allowed among bases. Duplicate keys: {'data_root',
#     'train_dataloader'}"  (a base defining those two next to the PCAE recipe)
# and every recipe already defines data_root, train_dataloader, optim_wrapper, param_scheduler,
# train_cfg, ... A base cannot inherit "its" recipe either (each tiny config has a different one).
tiny_img_size = 96
tiny_data_root = 'data/demo/imagenet/'  # written by tools/demo.py (bash tools/run_demo.sh)
tiny_train_pipeline = [  # the recipes' fast CPU pipeline (datasets/imagenet_bs512_mim.py)
    dict(type='LoadImageFast'),
    dict(type='RandomResizedCropTensor', scale=tiny_img_size, crop_ratio_range=(0.2, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlipTensor', prob=0.5),
    dict(type='PackInputs'),
]
tiny_train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=tiny_data_root, pipeline=tiny_train_pipeline))

tiny_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 8 / 256 * 10, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))
tiny_max_epochs = 4
tiny_param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=tiny_max_epochs - 1, by_epoch=True, begin=1,
         end=tiny_max_epochs, convert_to_iter_based=True),
]
tiny_train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=tiny_max_epochs)
tiny_auto_scale_lr = dict(base_batch_size=8)
tiny_default_hooks = dict(logger=dict(type='LoggerHook', interval=5))
