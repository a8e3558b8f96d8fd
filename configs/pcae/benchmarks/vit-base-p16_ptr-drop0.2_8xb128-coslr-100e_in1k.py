# PCAE ViT-B/16 -> ImageNet-1k fine-tuning with progressive token reduction (PTR), drop 0.2.
# PCAE Table 5 (reported): 385 img/s, 13.19 GMACs, 83.5% top-1.
# Check MACs / throughput: python -m tools.analysis.ptr_flops (see docs/BENCHMARK.md).
_base_ = './vit-base-p16_8xb128-coslr-100e_in1k.py'  # PCAE checkpoint, MAE fine-tune recipe
# Drop 0.2 of the patch tokens after block 1 and again after block 5 (0-based), keep
# 0.8 per stage: 196 -> 156 -> 124 patch tokens (+ cls, always kept), train and test alike.
model = dict(backbone=dict(token_reduction=dict(locations=[1, 5], keep_ratio=0.8)))
