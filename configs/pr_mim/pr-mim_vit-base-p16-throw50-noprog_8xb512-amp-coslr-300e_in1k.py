# PR-MIM ablation: partial reconstruction only; the 98 thrown patches get no loss.
_base_ = './pr-mim_vit-base-p16-throw50_8xb512-amp-coslr-300e_in1k.py'
model = dict(partial_reconstruction=dict(progressive=None))
custom_hooks = []
