# MAE ViT-B/16 from the shared parts (PixelMAE): student encoder on the 49 visible tokens + cls,
# PartialDecoder (8 x 512) over cls + 49 visible + all 147 masked tokens (197 tokens), norm-pix
# MSE on the masked patches. PR-MIM adds `partial_reconstruction=dict(...)` to this model.
model = dict(
    type='PixelMAE',
    backbone=dict(type='MIMViT', arch='b', img_size=224, patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='PartialDecoder',
        num_patches=196,
        in_chans=768,
        embed_dim=512,
        depth=8,
        num_heads=16,
        mlp_ratio=4.,
        out_dims=16 * 16 * 3),  # pixels of one patch
    head=dict(type='PartialPixelHead', patch_size=16, norm_pix=True),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ])
