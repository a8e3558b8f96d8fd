"""tools/analysis/memory_estimate.py: the fake-tensor prediction of a training step's peak
memory against the same step measured on real tensors (the tensor count and glibc's
allocator), the CUDA emulation, the FSDP layout and the command line."""
import json

import pytest
import torch

import pcae_mm  # noqa: F401
from tests.helpers import tiny_config
from tools.analysis import memory_estimate
from tools.analysis.pcae_bench import builder, memory

#: the prediction's step part (activations, temporaries, gradients) vs glibc's in-use bytes
#: over the same step: measured -0.6% .. -2.2% at batch 32 (the allocator also holds the
#: autograd graph's C++ nodes, ~0.25 MiB, which are host memory on a GPU too)
MALLOC_TOLERANCE = 0.05


def cfg_of(method):
    builder.register_all()
    return builder.load_config(tiny_config(method))


@pytest.mark.parametrize('method,amp', [('pcae', 'fp16'), ('mr_mae', 'bf16'), ('pr_mim', 'none')])
def test_prediction_equals_the_real_step(method, amp):
    """Fake tensors (no data) vs the same training step on real tensors: the same bytes, and
    within MALLOC_TOLERANCE of what glibc's allocator had in use."""
    torch.manual_seed(0)
    pred = memory.predict_training_memory(cfg_of(method), 32, amp=amp, device_kind='cpu')
    real = memory.measure_training_memory(cfg_of(method), 32, amp=amp)
    assert pred['peak'] == real['peak'] and pred['resident'] == real['resident'], (pred, real)
    if real['malloc_step'] is None:
        pytest.skip('no glibc mallinfo2 here')
    assert abs(pred['step'] - real['malloc_step']) <= MALLOC_TOLERANCE * real['malloc_step']
    # the breakdown adds up: weights + AdamW state live between steps
    assert pred['resident'] == pred['params_trainable'] + pred['params_frozen'] + \
        pred['buffers'] + pred['optimizer_state']
    assert pred['optimizer_state'] >= 2 * pred['params_trainable']  # two fp32 moments
    assert 0 < pred['activations_saved'] < pred['step']


def test_cuda_emulation_and_precision():
    cfg = cfg_of('pcae')
    cpu = memory.predict_training_memory(cfg, 16, amp='fp16', device_kind='cpu')
    cuda = memory.predict_training_memory(cfg_of('pcae'), 16, amp='fp16', device_kind='cuda')
    fp32 = memory.predict_training_memory(cfg_of('pcae'), 16, amp='none', device_kind='cuda')
    assert cuda['peak'] > cpu['peak']  # 512-byte blocks, fp32 layer-norm outputs
    assert fp32['activations_saved'] > cuda['activations_saved']
    with torch.autocast('cpu', dtype=torch.float16), memory.cuda_autocast_policy():
        x = torch.nn.Linear(8, 8)(torch.randn(2, 8))
        assert x.dtype == torch.float16
        assert torch.nn.functional.layer_norm(x, (8, )).dtype == torch.float32  # as on CUDA
    assert torch.nn.functional.layer_norm is not None
    with torch.autocast('cpu', dtype=torch.float16):  # restored afterwards
        assert torch.nn.functional.layer_norm(x, (8, )).dtype == torch.float16


def test_fsdp_layout_shards_the_student_only(tmp_path):
    cfg = cfg_of('pcae')
    one = memory.predict_training_memory(cfg, 8, fsdp_world_size=1)
    eight = memory.predict_training_memory(cfg_of('pcae'), 8, fsdp_world_size=8)
    n = one['num_params_trainable']
    assert one['params_trainable'] == 4 * n and eight['params_trainable'] == 4 * n // 8
    assert one['optimizer_state'] == 8 * n and eight['optimizer_state'] == 8 * n // 8
    assert one['teachers'] == eight['teachers'] > 0  # replicated, whole
    assert eight['peak'] < one['peak']
    amp = memory.predict_training_memory(cfg_of('pcae'), 8, amp='bf16')
    assert one['activations_saved'] <= amp['activations_saved']  # bf16 everywhere under FSDP


def test_command_line(tmp_path):
    out = tmp_path / 'mem.json'
    rows = memory_estimate.main([tiny_config('sdae'), tiny_config('pcae'), '--batch', '4',
                                 '--gpu-memory', '0.004', '--json', str(out), '--set', 'x'])
    assert [r['name'] for r in rows] == ['sdae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k',
                                         'pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k']
    data = json.loads(out.read_text())
    assert data['rows'][0]['set'] == 'x' and data['rows'][0]['precision'] == 'none'
    assert data['rows'][0]['peak_mib'] == pytest.approx(rows[0]['peak'] / 2**20)
    assert [r['fits'] for r in rows] == [False, False]  # 4 MiB is too little
    assert memory_estimate.amp_of(builder.load_config(
        'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'), 'auto') == 'fp16'
    with pytest.raises(SystemExit):
        memory_estimate.main([])
