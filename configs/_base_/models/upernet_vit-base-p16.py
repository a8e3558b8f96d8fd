# UperNet on a plain ViT-B/16 (MAE / BEiT segmentation protocol): features of blocks
# [3, 5, 7, 11] (cls token kept through the blocks), Feature2Pyramid rescales [4, 2, 1, 0.5],
# UPerHead (768 channels) + auxiliary FCN head on level 2. Backbone is pcae_mm's DenseViT
# (mmpretrain scope), which loads pcae_mm checkpoints by prefix and verifies the load.
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,  # EncoderDecoder would copy it into the backbone; we use init_cfg
    backbone=dict(
        type='mmpretrain.DenseViT',
        arch='b',
        img_size=224,  # pre-training grid of pos_embed; interpolated to 32 x 32 in forward
        patch_size=16,
        out_indices=[3, 5, 7, 11],
        drop_path_rate=0.1,
        final_norm=False,
        with_cls_token=True,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    neck=dict(type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5], norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
