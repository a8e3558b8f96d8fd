# ImageNet-1k pre-training data, decoded on the GPU (issue 24): the dataloader workers only read
# the files (LoadImageBytes: the JPEG bytes, or a CPU-decoded image for files nvjpeg does not
# take: grey, CMYK, EXIF-rotated, PNG); the model's data preprocessor decodes each batch with
# nvjpeg (torchvision.io.decode_jpeg(list, device='cuda')), then runs the same
# RandomResizedCropTensor + RandomFlipTensor as the fast CPU pipeline (imagenet_bs512_mim.py) on
# the GPU, and normalises. On a machine without CUDA the same preprocessor decodes on the CPU.
# A recipe uses it through its data_preprocessor and train_dataloader (see
# configs/pcae/pcae_vit-base-p16-gpudecode_8xb512-amp-coslr-300e_in1k.py).
dataset_type = 'ImageNetLayout'
data_root = 'data/imagenet/'
img_size = 224

data_preprocessor = dict(
    type='GPUDecodeDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,  # the model gets RGB, as from the CPU pipelines
    augments=[
        dict(
            type='RandomResizedCropTensor',
            scale=img_size,
            crop_ratio_range=(0.2, 1.0),
            interpolation='bicubic'),
        dict(type='RandomFlipTensor', prob=0.5),
    ])

train_pipeline = [
    dict(type='LoadImageBytes'),  # bytes; truncated / unreadable files named here
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=512,
    num_workers=4,  # reading files only
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),  # per-sample tensors of different lengths
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
