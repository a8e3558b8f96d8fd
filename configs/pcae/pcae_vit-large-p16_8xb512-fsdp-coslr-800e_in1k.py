# PCAE ViT-L/16 with mmengine's FlexibleRunner + FSDP (parameters, gradients and optimizer state
# sharded across GPUs), bf16 mixed precision.
#   bash tools/dist_train.sh configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py 8
# The EMA teacher is updated element-wise on each rank's local shard: the size-based policy
# wraps every student and teacher block alike (identical flat-parameter layout), and
# use_orig_params=True exposes matching per-parameter views. Not exercised by CI (no GPU).
_base_ = './pcae_vit-large-p16_8xb512-amp-coslr-800e_in1k.py'

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(
            type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
            min_num_params=int(1e7)),
        use_orig_params=True,
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32',
                             buffer_dtype='float32')))
# FSDP handles mixed precision itself: plain OptimWrapper, no loss scaling with bf16.
optim_wrapper = dict(_delete_=True,
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
        }))
