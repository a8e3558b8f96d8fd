# Tiny PR-MIM on SdAE feature targets for CPU: teacher on 3 folds of 9 masked patches, decoder
# on the 9 furthest-sampled ones (1 + 9 + 9 = 19 tokens), progressive head on the 18 thrown.
_base_ = '../sdae/sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'
model = dict(
    partial_reconstruction=dict(
        type='PartialReconstruction',
        throw_ratio=0.5,
        sampling='furthest',
        progressive=dict(start_share=0.0, end_share=1.0, start_progress=0.0, end_progress=0.5,
                         loss_weight=1.0)))
custom_hooks = [dict(type='EMATeacherHook'), dict(type='ProgressiveReconstructionHook')]
