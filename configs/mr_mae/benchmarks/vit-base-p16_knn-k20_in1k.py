# MR-MAE ViT-B/16 -> ImageNet-1k weighted kNN (k=20, T=0.07; val queries, 100 train images per
# class as bank), no training:
#   python tools/analysis/knn_eval.py configs/mr_mae/benchmarks/vit-base-p16_knn-k20_in1k.py \
#       --checkpoint $CKPT   [--prefix teacher.module. for the EMA teacher]
_base_ = '../../benchmarks/knn/vit-base-p16_knn-k20_in1k.py'
checkpoint = 'work_dirs/mr-mae_vit-base-p16_8xb512-amp-coslr-200e_in1k/epoch_200.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint)))
