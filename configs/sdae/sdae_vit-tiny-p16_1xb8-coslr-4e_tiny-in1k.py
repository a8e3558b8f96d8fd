# Tiny SdAE for CPU: the same code path as the ViT-B recipe on a 96 px, 4-block, 64-wide ViT and
# the small ImageNet-layout dataset that `tools/demo.py` generates under data/demo/imagenet.
# 36 patches, 9 visible, 27 masked -> teacher on 3 folds of 9 (each the size of the visible set).
_base_ = ['./sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

img_size = _base_.tiny_img_size
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size,
        drop_path_rate=0.1),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4, out_dims=64),
    num_folds=3)

data_root = _base_.tiny_data_root
train_pipeline = _base_.tiny_train_pipeline
train_dataloader = _base_.tiny_train_dataloader
optim_wrapper = dict(  # the SdAE recipe's base lr and weight decay
    _base_.tiny_optim_wrapper,
    optimizer=dict(type='AdamW', lr=2.666e-4 * 8 / 256 * 10, betas=(0.9, 0.95),
                   weight_decay=0.04))
max_epochs = _base_.tiny_max_epochs
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
auto_scale_lr = _base_.tiny_auto_scale_lr
default_hooks = _base_.tiny_default_hooks
