# PCAE ViT-L/16 with mmengine's FlexibleRunner + FSDP (student parameters, gradients and
# optimizer state sharded across GPUs, one unit per transformer block), bf16 mixed precision.
#   bash tools/dist_train.sh configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py 8
# The EMA teacher is replicated on every rank (kept out of FSDP, fp32) and averaged toward the
# student's full parameters (one all-gather per EMA step): the same EMA as without FSDP. See
# configs/_base_/strategies/fsdp_bf16.py and README "FSDP". The 2-process CPU test
# (tests/test_distributed/test_fsdp.py) runs this strategy on the tiny models; ViT-L on GPUs is
# not exercised by CI. CPU: runs unchanged (gloo); force with
#   --cfg-options strategy.model_wrapper.device_id=cpu
_base_ = ['./pcae_vit-large-p16_8xb512-amp-coslr-800e_in1k.py',
          '../_base_/strategies/fsdp_bf16.py']

# FSDP handles mixed precision itself: plain OptimWrapper, no loss scaling with bf16; the
# optimizer and its parameter groups are the recipe's.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor=_base_.optim_wrapper.constructor,
    optimizer=_base_.optim_wrapper.optimizer,
    paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
