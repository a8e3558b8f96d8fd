# PCAE ViT-B/16: student encoder on visible tokens, EMA teacher on masked tokens with
# progressive token reduction after blocks [0, 4, 8] (147 -> 73 -> 36 -> 18), decoder on
# cls + 49 visible + 18 retained tokens, cosine loss to standardised teacher features.
model = dict(
    type='PCAE',
    backbone=dict(type='MIMViT', arch='b', img_size=224, patch_size=16, mask_ratio=0.75,
                  drop_path_rate=0.25),
    neck=dict(
        type='PartialDecoder',
        num_patches=196,
        in_chans=768,
        embed_dim=512,
        depth=8,
        num_heads=16,
        mlp_ratio=4.,
        out_dims=768,  # prediction width = teacher width
        # As the authors' code (caddyless/PCAE models_mae.py): every decoder block gets the
        # encoder's recipe drop path, constant (not the encoder's linear 0 -> 0.25 ramp).
        drop_path_rate=0.25),
    head=dict(type='FeatureCosineHead', cos_dim=-1),
    # Teacher convention: teacher = m * teacher + (1 - m) * student, m: 0.9999 -> 1.0 (cosine),
    # updated after every iteration by EMATeacherHook.
    teacher=dict(momentum=0.9999, end_momentum=1.0, schedule='cosine', update_by='iter'),
    token_reduction=dict(num_stages=3, keep_ratio=0.5, mode='similarity'),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ])
custom_hooks = [dict(type='EMATeacherHook')]
