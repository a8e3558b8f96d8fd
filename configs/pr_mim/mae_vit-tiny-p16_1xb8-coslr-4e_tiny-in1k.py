# Tiny MAE (PixelMAE) for CPU: a 96 px, 4-block, 64-wide ViT on the small ImageNet-layout
# dataset that `tools/demo.py` generates under data/demo/imagenet. 36 patches, 9 visible,
# 27 masked -> decoder on 1 + 9 + 27 = 37 tokens.
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

# The tiny CPU settings (configs/_base_/tiny_cpu.py): each `tiny_<name>` there is `<name>` here.
globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4))
