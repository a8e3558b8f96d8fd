# ImageNet-1k pre-training data (MAE pipeline): RandomResizedCrop(0.2-1) + flip, labels unused.
# The fast CPU pipeline (issue 24): the file decoded by OpenCV's libjpeg-turbo, as in
# LoadImageChecked, then crop + resize + flip on a uint8 tensor with torch's antialiased resampler
# (a port of Pillow's). The crop sampler and the flip are mmpretrain's own (the same boxes and
# flips as RandomResizedCrop + RandomFlip under one seed), the output is the same
# 3 x 224 x 224 uint8 BGR tensor (bicubic rounding: 95% of pixels equal, the rest 1 grey level
# apart, a few up to ~10 at sharp edges), at several times the images/s per core (README,
# "Input pipeline"). The checked Pillow pipeline it replaces, still available:
#   [dict(type='LoadImageChecked'),
#    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
#         interpolation='bicubic'),
#    dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]
# Decoding on the GPU instead: imagenet_bs512_mim_gpu-decode.py.
dataset_type = 'ImageNetLayout'  # ImageNet layout, any number of classes (pcae_mm)
data_root = 'data/imagenet/'
img_size = 224

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFast'),  # 3 x H x W uint8 BGR tensor; bad files named (LoadImageChecked)
    dict(
        type='RandomResizedCropTensor',
        scale=img_size,
        crop_ratio_range=(0.2, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlipTensor', prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
