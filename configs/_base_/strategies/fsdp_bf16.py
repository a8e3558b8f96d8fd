# mmengine FlexibleRunner + FSDPStrategy for the pcae_mm algorithms (issue 13). List it after a
# recipe in `_base_` and replace the recipe's AmpOptimWrapper by a plain OptimWrapper: FSDP does
# the bf16 mixed precision itself (fp32 master weights, bf16 compute, fp32 gradient reduction).
#
# * Student sharded, one FSDP unit per transformer block (vit_block_wrap_policy: by class, so
#   tiny CPU models wrap their blocks as ViT-L does); the rest in the root unit.
# * Teachers replicated (TeacherReplicatedFSDP): the EMA teacher / frozen target generator that
#   the algorithm declares (fsdp_ignored_modules) stay whole on every rank, in fp32; the EMA
#   hook reads the student's full parameters (one all-gather per EMA step), so the EMA is exact.
# * Checkpoints: the full state dict on rank 0 (state_dict_cfg='full'), the layout DDP writes,
#   so downstream configs load it unchanged; --resume works under FSDP (TeacherFSDPStrategy
#   fixes mmengine 0.10.7's optimizer-state load on torch 2.x).
# * CPU (gloo, no CUDA): nothing to change, the wrapper puts FSDP on the CPU when there is no
#   GPU; to force it: --cfg-options strategy.model_wrapper.device_id=cpu
runner_type = 'FlexibleRunner'
strategy = dict(
    type='TeacherFSDPStrategy',  # mmengine's FSDPStrategy + a --resume fix for torch 2.x
    model_wrapper=dict(
        type='TeacherReplicatedFSDP',
        auto_wrap_policy=dict(type='vit_block_wrap_policy'),
        use_orig_params=True,
        mixed_precision=dict(
            param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32')),
    state_dict_cfg='full')
