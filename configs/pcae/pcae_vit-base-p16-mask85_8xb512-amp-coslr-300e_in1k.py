# Ablation (PCAE Table): mask ratio 0.85. Reported fine-tune / COCO box / pre-train throughput:
# 75%: 83.6 / 47.6 / 550.5   85%: 83.6 / 47.7 / 739.7   90%: 83.5 / 47.4 / 876.1
_base_ = './pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'
model = dict(backbone=dict(mask_ratio=0.85))
