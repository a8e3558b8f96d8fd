# SdAE ViT-B/16 -> ImageNet-1k weighted kNN (k=20, T=0.07; val queries, 100 train images per
# class as bank), no training:
#   python tools/analysis/knn_eval.py configs/sdae/benchmarks/vit-base-p16_knn-k20_in1k.py \
#       --checkpoint $CKPT   [--prefix teacher.module. for the EMA teacher]
_base_ = '../../benchmarks/knn/vit-base-p16_knn-k20_in1k.py'
checkpoint = 'work_dirs/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k/epoch_300.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
