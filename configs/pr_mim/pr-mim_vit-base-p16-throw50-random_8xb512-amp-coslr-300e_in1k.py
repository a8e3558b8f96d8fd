# PR-MIM ablation: the 49 decoded masked patches are a uniform random subset instead of the
# furthest-point sample.
_base_ = './pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py'
model = dict(partial_reconstruction=dict(sampling='random'))
