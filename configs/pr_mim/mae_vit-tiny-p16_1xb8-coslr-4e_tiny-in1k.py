# Tiny MAE (PixelMAE) for CPU: a 96 px, 4-block, 64-wide ViT on the small ImageNet-layout
# dataset that `tools/demo.py` generates under data/demo/imagenet. 36 patches, 9 visible,
# 27 masked -> decoder on 1 + 9 + 27 = 37 tokens.
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

img_size = _base_.tiny_img_size
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4))

data_root = _base_.tiny_data_root
train_pipeline = _base_.tiny_train_pipeline
train_dataloader = _base_.tiny_train_dataloader
optim_wrapper = _base_.tiny_optim_wrapper
max_epochs = _base_.tiny_max_epochs
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
auto_scale_lr = _base_.tiny_auto_scale_lr
default_hooks = _base_.tiny_default_hooks
