# ABLATION, not the paper's PCAE: the tiny PCAE with the teacher's token reduction keeping a
# RANDOM subset of the masked tokens (same counts, 27 -> 13 -> 6 -> 3, same cost) instead of the
# tokens least similar to their mean. Issue 14 ran this variant as the tiny PCAE (the
# similarity-chosen positions leaked the targets of a teacher stuck near its init by 0.9999);
# configs/pcae/README.md ("Short runs") compares the two.
_base_ = './pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py'

model = dict(token_reduction=dict(mode='random'))
# Read by the learning tools (tools/tiny_data/digits_knn.describe_run) to label its figures.
ablation = 'PTR survivors at random, not by similarity'
