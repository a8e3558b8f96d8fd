# MR-MCMAE (400 ep) -> ImageNet-1k fine-tuning, 100 epochs (paper: 85.8% top-1). The MAE
# fine-tuning recipe of the ViT benchmark with the hybrid encoder: full-image (unmasked)
# convolutions, mean of the stride-16 tokens + LN, layer decay over its 15 blocks.
_base_ = '../../benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'
checkpoint = 'work_dirs/mr-mcmae_convvit-base_8xb512-amp-coslr-400e_in1k/epoch_400.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='MCMAEViT',
        arch='base',
        img_size=224,
        masking=False,
        out_type='avg_featmap',
        out_indices=(2, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
