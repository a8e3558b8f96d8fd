# PR-MIM thrown-share ablation: throw 62.5% of all patches (122 of the 147 masked), the decoder
# keeps 25 -> 1 + 49 + 25 = 75 tokens.
_base_ = './pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py'
model = dict(partial_reconstruction=dict(throw_ratio=0.625))
