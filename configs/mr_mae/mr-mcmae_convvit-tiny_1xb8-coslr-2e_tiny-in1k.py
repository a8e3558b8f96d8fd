# Tiny MR-MCMAE for CPU: hybrid encoder 96 px -> 24x24x32 (1 masked-conv block) -> 12x12x48
# (1 block) -> 6x6x64 (2 transformer blocks on the 9 visible tokens), skip decoder, and the tiny
# random teachers of the tiny MR-MAE config (created as described there).
# Same wiring as mr-mcmae_convvit-base_8xb512-amp-coslr-400e_in1k.py, at tiny widths.
_base_ = './mr-mae_vit-tiny-p16_1xb8-coslr-2e_tiny-in1k.py'

model = dict(
    type='MRMCMAE',
    backbone=dict(
        _delete_=True,
        type='MCMAEViT',
        arch=dict(embed_dims=[32, 48, 64], depths=[1, 1, 2], num_heads=4),
        img_size=96,
        mask_ratio=0.75,
        drop_path_rate=0.1),
    neck=dict(
        type='MultiScaleSkipDecoder',
        skip_channels=(32, 48),
        skip_strides=(4, 2),
        num_patches=36,
        in_chans=64,
        embed_dim=64,
        depth=2,
        num_heads=4))
