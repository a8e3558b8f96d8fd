# PR-MIM on SdAE feature targets, ViT-B/16, SdAE's 300-epoch recipe (batch 768): the teacher
# still encodes all 147 masked patches in 3 folds of 49; the decoder reconstructs the 49
# furthest-sampled ones (99 tokens instead of 197) and the progressive head predicts the
# teacher features of the 98 thrown patches.
_base_ = '../sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py'
model = dict(
    partial_reconstruction=dict(
        type='PartialReconstruction',
        throw_ratio=0.5,
        sampling='furthest',
        progressive=dict(start_share=0.0, end_share=1.0, start_progress=0.0, end_progress=0.5,
                         loss_weight=1.0)))
custom_hooks = [dict(type='EMATeacherHook'), dict(type='ProgressiveReconstructionHook')]
