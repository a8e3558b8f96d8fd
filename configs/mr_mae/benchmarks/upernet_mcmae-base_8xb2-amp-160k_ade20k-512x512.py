# MR-MCMAE (400 ep) -> ADE20K UperNet on the hybrid encoder's stride 4 / 8 / 16 maps.
_base_ = '../../benchmarks/upernet/upernet_vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
checkpoint = 'work_dirs/mr-mcmae_convvit-base_8xb512-amp-coslr-400e_in1k/epoch_400.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MCMAEViT',
        arch='base',
        img_size=224,
        masking=False,
        out_indices=(0, 1, 2),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=None,
    decode_head=dict(in_channels=[256, 384, 768], in_index=[0, 1, 2]),
    auxiliary_head=dict(in_channels=768, in_index=2))
