# Runtime for mmseg (1.2.2) configs fed by pcae_mm checkpoints: mmseg's default scope, pcae_mm
# imported for its registered parts (refer to them as 'mmpretrain.DenseViT', ...).
# Our own copy of mmseg's default_runtime (no `mmseg::` base: see OPENMMLAB.md, _scope_ trap).
default_scope = 'mmseg'
custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# pcae_mm's reliability hooks (docs/RELIABILITY.md): stop on divergence, exact resume
default_hooks = dict(
    divergence_guard=dict(type='mmpretrain.DivergenceGuardHook', patience=3),
    exact_resume=dict(type='mmpretrain.ExactResumeHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
