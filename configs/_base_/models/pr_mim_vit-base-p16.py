# PR-MIM ViT-B/16 on MAE pixel targets: throw 50% of ALL patches (98 of the 147 masked) out of
# the decoder, which keeps the 49 masked patches chosen by furthest-point sampling seeded by the
# visible ones -> decoder on 1 + 49 + 49 = 99 tokens. Progressive reconstruction: every thrown
# patch is predicted from its nearest decoded token by a light linear head; the supervised share
# of thrown patches (nearest first) grows linearly 0 -> 1 over the first half of training.
_base_ = './mae_vit-base-p16.py'
model = dict(
    partial_reconstruction=dict(
        type='PartialReconstruction',
        throw_ratio=0.5,
        sampling='furthest',
        progressive=dict(start_share=0.0, end_share=1.0, start_progress=0.0, end_progress=0.5,
                         loss_weight=1.0)))
custom_hooks = [dict(type='ProgressiveReconstructionHook')]
