# ImageNet-1k weighted kNN of a frozen pcae_mm ViT-B/16 (DINO / mmselfsup's kNN protocol):
# cosine similarity, k = 20 neighbours voting exp(sim / 0.07), top-1 / top-5. Queries: the
# 50,000 val images; bank: the first 100 train images of each class (100k images, the
# tools/analysis/knn_eval.py --bank-per-class default here; 0 = the whole 1.28M train set).
# Features: final-norm cls token of the unmasked encoder (knn.pool='mean' for the patch mean).
# No training: run on a checkpoint (8 GPUs: about 10 minutes for ViT-B with this bank):
#   python tools/analysis/knn_eval.py configs/<method>/benchmarks/vit-base-p16_knn-k20_in1k.py \
#       --checkpoint work_dirs/<run>/epoch_300.pth
# The same evaluation runs online during pre-training with custom_hooks += [dict(
# type='KNNEvalHook', interval=10, bank_dataloader=..., query_dataloader=...)] (the
# dataloaders below), logging knn/student_top1 (and knn/teacher_top1) to TensorBoard.
_base_ = [
    '../../_base_/datasets/imagenet_bs128_mae-finetune-224.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',  # no neck, no head: tools/analysis/knn_eval.py reads the backbone
    backbone=dict(
        type='MIMViT',
        masking=False,  # plain ViT forward, no masking
        arch='b',
        img_size=224,
        patch_size=16,
        out_type='raw',  # all tokens after the final norm; the kNN pools them (knn.pool)
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')),
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))

knn_loader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
knn = dict(
    k=20,
    temperature=0.07,
    pool='cls',
    topk=(1, 5),
    chunk_size=256,
    bank_per_class=100,
    bank_dataloader=dict(
        knn_loader,
        dataset=dict(type={{_base_.dataset_type}}, data_root={{_base_.data_root}},
                     split='train', pipeline={{_base_.test_pipeline}})),
    query_dataloader=dict(
        knn_loader,
        dataset=dict(type={{_base_.dataset_type}}, data_root={{_base_.data_root}},
                     split='val', pipeline={{_base_.test_pipeline}})))
