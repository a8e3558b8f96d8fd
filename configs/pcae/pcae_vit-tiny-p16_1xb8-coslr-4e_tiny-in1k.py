# Tiny PCAE for CPU: the paper's method (the ViT-B recipe's code path and settings) on a 96 px,
# 4-block, 64-wide ViT and the small ImageNet-layout dataset that `tools/demo.py` generates under
# data/demo/imagenet. 36 patches, 9 visible, 27 masked -> PTR by similarity after blocks
# [0, 1, 2] (the recipe's 3 stages keeping 0.5): 27 -> 13 -> 6 -> 3 targets, 11% of the masked
# patches (ViT-B: 18 of 147, 12%).
_base_ = ['./pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

# The tiny CPU settings (configs/_base_/tiny_cpu.py): each `tiny_<name>` there is `<name>` here.
globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size,
        drop_path_rate=0.1),
    # The authors' decoder blocks take the encoder's drop-path value, constant (ViT-B: 0.25).
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4, out_dims=64,
              drop_path_rate=0.1),
    # The EMA time scale as the recipe's share of its run (EMAModel `horizon`): 0.9999 is a
    # horizon 1 / (1 - m) of 10,000 iterations, 10.65% of the ViT-B recipe's 93,900 (300 epochs
    # x 313 iterations of 8 x 512 on ImageNet-1k's 1,281,167 images). The momentum is derived
    # from this run's length K as m = 1 - 1 / (horizon * K), cosine -> 1.0 as the recipe
    # (a 4-epoch run of the demo's 72 images: K = 36, m = 0.74; 0.9999 would leave the teacher
    # at its initialisation).
    teacher=dict(momentum=None, horizon=1 / (1 - 0.9999) / (300 * 313)))
