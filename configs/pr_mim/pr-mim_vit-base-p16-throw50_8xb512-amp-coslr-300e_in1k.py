# PR-MIM on MAE pixel targets, ViT-B/16, 300 epochs, batch 4096: throw 50% of all patches
# (98 of 147 masked), furthest sampling keeps 49 -> decoder on 1 + 49 + 49 = 99 tokens;
# progressive reconstruction of the thrown patches, share 0 -> 1 over the first half.
# Reported (paper): lossless vs MAE with 28% fewer FLOPs and 36% less memory.
_base_ = [
    '../_base_/models/pr_mim_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mim.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
