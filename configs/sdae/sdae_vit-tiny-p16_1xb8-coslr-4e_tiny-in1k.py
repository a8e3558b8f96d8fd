# Tiny SdAE for CPU: the same code path as the ViT-B recipe on a 96 px, 4-block, 64-wide ViT and
# the small ImageNet-layout dataset that `tools/demo.py` generates under data/demo/imagenet.
# 36 patches, 9 visible, 27 masked -> teacher on 3 folds of 9 (each the size of the visible set).
_base_ = ['./sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

# The tiny CPU settings (configs/_base_/tiny_cpu.py): each `tiny_<name>` there is `<name>` here.
globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size,
        drop_path_rate=0.1),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4, out_dims=64),
    num_folds=3,
    # The EMA time scale as the recipe's share of its run (EMAModel `horizon`): the recipe's
    # per-epoch 0.96 -> 0.99 over 300 epochs is a horizon 1 / (1 - m) of 25 -> 100 epochs,
    # 8.3% -> 33% of the run. Derived from this run's length K: m = 1 - 1 / (horizon * K), 0
    # when that is under one update (the demo's 4 epochs: 0 -> 0.25, i.e. the teacher is the
    # student of the previous epoch; the digits check's 40 epochs: 0.70 -> 0.925).
    teacher=dict(momentum=None, end_momentum=None, horizon=1 / (1 - 0.96) / 300,
                 end_horizon=1 / (1 - 0.99) / 300))

optim_wrapper = dict(  # the SdAE recipe's base lr and weight decay
    _base_.tiny_optim_wrapper,
    optimizer=dict(type='AdamW', lr=2.666e-4 * 8 / 256 * 10, betas=(0.9, 0.95),
                   weight_decay=0.04))
