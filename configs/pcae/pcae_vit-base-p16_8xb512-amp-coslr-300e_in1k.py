# PCAE ViT-B/16, ImageNet-1k, 300 epochs, total batch 4096 (8 GPUs x 512), AMP.
# Paper (reported): 83.6% fine-tuned top-1, 10.1 GPU-days; COCO Mask R-CNN 47.6 / 42.0.
_base_ = [
    '../_base_/models/pcae_vit-base-p16.py',
    '../_base_/datasets/imagenet_bs512_mim.py',
    '../_base_/schedules/adamw_coslr_pretrain.py',
    '../_base_/default_runtime.py',
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})

default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
