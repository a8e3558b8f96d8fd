# MR-MAE ViT-B/16: MAE encoder on the 49 visible tokens; one linear mimic head per frozen teacher
# (CLIP ViT-B/16, DINO ViT-B/16) on those visible tokens, targets = the teacher's last-layer patch
# tokens (full image, own normalisation) layer-normalised without affine, gathered at the visible
# ids; MAE decoder + norm-pix MSE on the 147 masked tokens.
# L = loss_pix + sum_t loss_weight_t * loss_mimic_t.
# Teachers are never downloaded: set their `checkpoint` to local mmpretrain-layout files
# (configs/mr_mae/README.md). They are not saved in this model's checkpoints.
clip_teacher = dict(
    type='FrozenTeacher',
    backbone=dict(
        type='VisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        pre_norm=True,  # CLIP: LN before the blocks, no patch-embed bias
        norm_cfg=dict(type='LN', eps=1e-5),
        layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
        out_type='featmap'),
    checkpoint='data/teachers/clip_vit-base-p16_openai.pth',
    prefix='backbone.',  # mmpretrain classifier / converter layout
    mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
    std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255])
dino_teacher = dict(
    type='FrozenTeacher',
    backbone=dict(
        type='VisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        norm_cfg=dict(type='LN', eps=1e-6),
        out_type='featmap'),
    checkpoint='data/teachers/dino_vit-base-p16.pth',
    prefix='backbone.',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375])

model = dict(
    type='MRMAE',
    backbone=dict(type='MIMViT', arch='b', img_size=224, patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='PartialDecoder',
        num_patches=196,
        in_chans=768,
        embed_dim=512,
        depth=8,
        num_heads=16,
        mlp_ratio=4.,
        out_dims=16 * 16 * 3),
    head=dict(type='PartialPixelHead', patch_size=16, norm_pix=True),
    teachers=dict(clip=clip_teacher, dino=dino_teacher),
    mimic_heads=dict(
        clip=dict(type='MimicHead', in_channels=768, out_channels=768, loss='smooth_l1',
                  loss_weight=1.0),
        dino=dict(type='MimicHead', in_channels=768, out_channels=768, loss='smooth_l1',
                  loss_weight=1.0)),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
    ])
