# SdAE ViT-B/16 with the objective of the authors' code (AbrahamYabo/SdAE, the README's 8-GPU
# command), for reproducing the run behind the paper's 84.1%. Differences from our default
# recipe `sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py`, all as the authors' code does:
# - teacher: its own random init, never copied from the student (models_teacher.py: a fresh
#   timm 0.3.2 ViT-B with a learned position embedding, trunc-normal std 0.02); the per-epoch
#   EMA (momentum cosine 0.96 -> 0.99, already the default) is the only thing that pulls it,
#   position embedding included, toward the student. Until the first update (end of epoch 0)
#   the targets come from the random teacher.
# - loss: cosine over the token axis of each fold of 49 (engine_pretrain.py calls
#   F.cosine_similarity with its default dim=1 on (3B, 49, 768) tensors).
# - weight decay 0.04 on the cls and mask tokens too (timm's add_weight_decay only exempts
#   1-d parameters and biases).
# Everything else (decoder 8 x 512 without drop path, encoder drop path 0.25, batch 8 x 96,
# lr, warmup, AdamW betas) is the recipe's. See configs/sdae/README.md, "Departures".
_base_ = './sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py'

model = dict(
    head=dict(cos_dim=1, num_folds=3),
    teacher=dict(init='random'))

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'mask_token': dict(decay_mult=1.),
            'cls_token': dict(decay_mult=1.),
        }))
