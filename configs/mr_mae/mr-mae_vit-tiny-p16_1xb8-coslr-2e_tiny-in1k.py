# Tiny MR-MAE for CPU: the ViT-B recipe's code path on a 96 px, 4-block, 64-wide ViT (36 patches,
# 9 visible, 27 masked) with two tiny 2-block 48-wide teachers (CLIP-style pre-norm + QuickGELU
# with CLIP normalisation, DINO-style). Their weights are random, saved to the `checkpoint` paths
# below by `bash tools/run_demo.sh --method mr_mae` (the tests save their own), or by you, e.g.:
#   mkdir -p work_dirs/demo/tiny_teachers && python -c "import torch, pcae_mm; \
#     from mmengine.config import Config; from mmpretrain.registry import MODELS; \
#     c = Config.fromfile('configs/mr_mae/mr-mae_vit-tiny-p16_1xb8-coslr-2e_tiny-in1k.py'); \
#     [torch.save({'state_dict': {'backbone.' + k: v for k, v in \
#       MODELS.build(t.backbone).state_dict().items()}}, t.checkpoint) \
#      for t in c.model.teachers.values()]"
_base_ = ['./mr-mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py', '../_base_/tiny_cpu.py']

# The tiny CPU settings (configs/_base_/tiny_cpu.py): each `tiny_<name>` there is `<name>` here.
globals().update({k[len('tiny_'):]: v for k, v in _base_.items() if k.startswith('tiny_')})

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=256),
        img_size=img_size,
        drop_path_rate=0.1),
    neck=dict(num_patches=36, in_chans=64, embed_dim=64, depth=2, num_heads=4),
    teachers=dict(
        clip=dict(
            backbone=dict(
                arch=dict(_delete_=True, embed_dims=48, num_layers=2, num_heads=4,
                          feedforward_channels=96),
                img_size=img_size),
            checkpoint='work_dirs/demo/tiny_teachers/clip_vit-tiny-p16.pth'),
        dino=dict(
            backbone=dict(
                arch=dict(_delete_=True, embed_dims=48, num_layers=2, num_heads=4,
                          feedforward_channels=96),
                img_size=img_size),
            checkpoint='work_dirs/demo/tiny_teachers/dino_vit-tiny-p16.pth')),
    mimic_heads=dict(
        clip=dict(in_channels=64, out_channels=48),
        dino=dict(in_channels=64, out_channels=48, loss='mse', loss_weight=0.5)))

max_epochs = 2  # the tiny settings with 2 epochs and a log line every iteration
param_scheduler = [
    _base_.tiny_param_scheduler[0],
    dict(_base_.tiny_param_scheduler[1], T_max=max_epochs - 1, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
