# Ablation (PCAE Table): 12 drop stage(s) at a fixed total drop of 87.5%: per-stage keep ratio
# 0.125 ** (1 / 12), stages after blocks (12 // 12) * i. Reported (stages, per-stage drop,
# GPU-days, top-1): 1, 87.5, 3.0, 81.5 | 3, 50, 3.3, 82.3 | 6, 29, 3.5, 82.0 | 12, 16, 3.6, 81.5.
_base_ = './pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'
model = dict(token_reduction=dict(num_stages=12, keep_ratio=0.125**(1 / 12)))
