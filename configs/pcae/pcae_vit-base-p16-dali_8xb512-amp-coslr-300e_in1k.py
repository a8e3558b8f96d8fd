# PCAE ViT-B/16 recipe (pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py) with the images decoded,
# cropped, resized and flipped by NVIDIA DALI on the GPU (configs/_base_/datasets/
# imagenet_bs512_mim_dali.py; needs pip install nvidia-dali-cuda120 or -cuda130): the same crop
# boxes and flips, the CPU workers only read files. Everything else is the recipe's.
_base_ = [
    '../_base_/models/pcae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mim_dali.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
