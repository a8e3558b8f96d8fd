# PCAE ViT-L/16, 800 epochs, total batch 4096, AMP, DDP. The paper reports ViT-B only; the
# official code defines ViT-L with the same 8 x 512 decoder, which this config follows
# (our choice, no reported number to compare with).
_base_ = './pcae_vit-base-p16_8xb512-amp-coslr-800e_in1k.py'

model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_chans=1024, out_dims=1024))  # prediction width = ViT-L teacher width
