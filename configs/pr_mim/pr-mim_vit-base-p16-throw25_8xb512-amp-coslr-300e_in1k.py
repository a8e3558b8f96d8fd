# PR-MIM thrown-share ablation: throw 25% of all patches (49 of the 147 masked), the decoder
# keeps 98 -> 1 + 49 + 98 = 148 tokens.
_base_ = './pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py'
model = dict(partial_reconstruction=dict(throw_ratio=0.25))
