# MAE ViT-B/16 from the shared parts (the PR-MIM baseline), ImageNet-1k, 300 epochs,
# total batch 4096 (8 GPUs x 512), AMP, base lr 1.5e-4 x 4096 / 256, warmup 40, wd 0.05.
# Decoder on 1 + 49 + 147 = 197 tokens.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mim.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
