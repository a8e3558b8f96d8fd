# Runtime shared by every pcae_mm config (our own copy: no `mmpretrain::` base, see OPENMMLAB.md).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['pcae_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic files, never a non-finite checkpoint, rotation keeps the last finite one
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # stops the run (error naming the iteration and the loss terms) after `patience`
    # consecutive non-finite steps; without AMP it skips non-finite updates
    divergence_guard=dict(type='DivergenceGuardHook', patience=3),
    # RNG states + sampler seed in every checkpoint: --resume repeats the straight run exactly
    exact_resume=dict(type='ExactResumeHook'),
    # warns (at most once per logging window, backing off) when waiting for data takes > 5% of
    # the iteration time
    data_time=dict(type='DataTimeHook', threshold=0.05),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
log_processor = dict(
    window_size=10, custom_cfg=[dict(data_src='', method='mean', window_size='global')])
