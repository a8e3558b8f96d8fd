# PCAE ViT-B/16 -> ImageNet-1k fine-tuning with progressive token reduction (PTR), drop 0.
# PCAE Table 5 (reported): 286 img/s, 17.57 GMACs, 83.8% top-1.
_base_ = './vit-base-p16_8xb128-coslr-100e_in1k.py'  # PCAE checkpoint, MAE fine-tune recipe
# No token is dropped: the reference row of the PTR table (same as the plain fine-tune config).
model = dict(backbone=dict(token_reduction=None))
