# SdAE with the EMA teacher updated after every iteration (momentum cosine 0.96 -> 0.99 over all
# iterations) instead of once per epoch.
_base_ = './sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py'
model = dict(teacher=dict(update_by='iter'))
