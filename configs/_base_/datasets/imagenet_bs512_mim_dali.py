# ImageNet-1k pre-training data through NVIDIA DALI (issue 24; optional: pip install
# nvidia-dali-cuda120 or -cuda130, matching torch's CUDA). The GPU-decode pipeline
# (imagenet_bs512_mim_gpu-decode.py: the workers only read the files) with DALIDataPreprocessor as
# the model's data preprocessor: the same RandomResizedCropTensor / RandomFlipTensor draw each
# image's box and flip (the same sampler as the CPU pipelines), then one DALI pipeline decodes only
# the box of each JPEG (nvjpeg through DALI's 'mixed' decoder), resizes it with antialiasing and
# flips it. Without DALI, building the preprocessor fails naming the package and the GPU-decode
# preprocessor, which needs none. A recipe uses it as the GPU-decode one (see
# configs/pcae/pcae_vit-base-p16-dali_8xb512-amp-coslr-300e_in1k.py).
_base_ = ['./imagenet_bs512_mim_gpu-decode.py']

data_preprocessor = dict(type='DALIDataPreprocessor', num_threads=4)  # DALI's threads per GPU
