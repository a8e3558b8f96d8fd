# PCAE ViT-B/16 recipe with the images decoded, cropped, resized and flipped by NVIDIA DALI on the
# GPU (optional: pip install nvidia-dali-cuda120 or -cuda130, matching torch's CUDA). The
# GPU-decode recipe (the workers only read the files; the same RandomResizedCropTensor /
# RandomFlipTensor draw each image's box and flip) with DALIDataPreprocessor as the model's data
# preprocessor: one DALI pipeline decodes only each box (nvjpeg through DALI's 'mixed' decoder),
# resizes it with antialiasing and flips it. Any recipe switches the same way from its GPU-decode
# variant. Without DALI, building the model fails naming the package and GPUDecodeDataPreprocessor.
_base_ = ['./pcae_vit-base-p16-gpudecode_8xb512-amp-coslr-300e_in1k.py']

data_preprocessor = dict(type='DALIDataPreprocessor', num_threads=4)  # DALI threads per GPU
model = dict(data_preprocessor=data_preprocessor)
