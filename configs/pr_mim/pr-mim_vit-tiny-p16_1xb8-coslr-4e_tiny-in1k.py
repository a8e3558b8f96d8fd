# Tiny PR-MIM on MAE pixel targets for CPU: 36 patches, 27 masked; throw 50% of all patches
# (18) -> furthest sampling keeps 9, decoder on 1 + 9 + 9 = 19 tokens; progressive
# reconstruction of the 18 thrown patches, share 0 -> 1 over the first half of training.
_base_ = './mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'
model = dict(
    partial_reconstruction=dict(
        type='PartialReconstruction',
        throw_ratio=0.5,
        sampling='furthest',
        progressive=dict(start_share=0.0, end_share=1.0, start_progress=0.0, end_progress=0.5,
                         loss_weight=1.0)))
custom_hooks = [dict(type='ProgressiveReconstructionHook')]
