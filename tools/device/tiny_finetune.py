# A 2-block, 32-wide PTR fine-tune classifier on 64 px images: the PTR section of the CPU
# dry run `bash tools/device/gpu_bench.sh OUT --device cpu --tiny`
# (tests/test_tools/test_device_kit.py).
_base_ = '../../configs/benchmarks/classification/vit-base-p16_8xb128-coslr-100e_in1k.py'
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2, num_heads=2,
                            feedforward_channels=64), img_size=64),
    head=dict(num_classes=4, in_channels=32))
data_preprocessor = dict(num_classes=4)
