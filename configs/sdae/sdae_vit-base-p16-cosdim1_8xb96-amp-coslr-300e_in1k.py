# SdAE with the official code's cosine over the token axis of each teacher fold (dim=1) instead
# of pcae_mm's default per-token cosine over channels (see README).
_base_ = './sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py'
model = dict(head=dict(cos_dim=1, num_folds=3))
