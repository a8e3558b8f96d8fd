# Tiny PCAE for CPU: the same code path as the ViT-B recipe on a 96 px, 4-block, 64-wide ViT and
# the small ImageNet-layout dataset that `tools/demo.py` generates under data/demo/imagenet.
# 36 patches, 9 visible, 27 masked -> PTR after blocks [0, 1, 2]: 27 -> 13 -> 6 -> 3.
_base_ = ['./pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py', '../_base_/tiny_cpu.py']

# The tiny CPU settings (configs/_base_/tiny_cpu.py): each `tiny_<name>` there is `<name>` here.
globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size,
        drop_path_rate=0.1),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4, out_dims=64),
    # Short runs: survivors chosen at random, not by similarity. Similarity-chosen ids tell the
    # decoder where the unusual content is, and with a near-random teacher that is enough to
    # predict the targets without reading the image: the encoder learns nothing (kNN on digits
    # 64.6 -> 64.0 in 420 steps; random: -> 74.6). See README "Short runs" (issue 14).
    token_reduction=dict(mode='random'))
