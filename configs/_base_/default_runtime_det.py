# Runtime for mmdet (3.3.0) configs fed by pcae_mm checkpoints: mmdet's default scope, pcae_mm
# imported for its registered parts (refer to them as 'mmpretrain.DenseViT', ...).
# Our own copy of mmdet's default_runtime (no `mmdet::` base: see OPENMMLAB.md, _scope_ trap).
default_scope = 'mmdet'
custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmpretrain.SafeCheckpointHook', interval=1),  # atomic, finite
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'),
    # pcae_mm's reliability hooks (docs/RELIABILITY.md): stop on divergence, exact resume
    divergence_guard=dict(type='mmpretrain.DivergenceGuardHook', patience=3),
    exact_resume=dict(type='mmpretrain.ExactResumeHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
