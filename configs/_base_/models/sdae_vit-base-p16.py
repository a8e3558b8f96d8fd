# SdAE ViT-B/16: student encoder on the 49 visible tokens + cls, full decoder (8 x 512) over
# cls + 49 visible + 147 masked tokens predicting teacher-width (768) features; EMA teacher on
# the 147 masked tokens in 3 disjoint folds of 49 (own cls per fold, no cross-fold attention);
# loss 1 - cos(pred, standardised teacher token) over channels.
model = dict(
    type='SdAE',
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
        out_dims=768),  # prediction width = teacher width
    head=dict(type='FeatureCosineHead', cos_dim=-1),
    num_folds=3,
    # Teacher convention: teacher = m * teacher + (1 - m) * student, m: 0.96 -> 0.99 (cosine),
    # one update per epoch (the official schedule); update_by='iter' for per-iteration updates.
    # Unlike the official code the teacher starts as a copy of the student (init='student', our
    # correction); init='random' is the authors' own random init (the *-official_* config).
    teacher=dict(momentum=0.96, end_momentum=0.99, schedule='cosine', update_by='epoch',
                 init='student'),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ])
custom_hooks = [dict(type='EMATeacherHook')]
