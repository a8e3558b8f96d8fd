"""tools/analysis/benchmark.py mechanics on tiny configs (no timing assertions)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT, tiny_config

TINY_PCAE, TINY_MAE = tiny_config('pcae'), tiny_config('mae')


def test_benchmark_runs_two_steps_and_writes_outputs(tmp_path):
    from tools.analysis import benchmark
    result = benchmark.main([
        TINY_PCAE, '--baseline', TINY_MAE, '--batch-size', '2', '--warmup', '0', '--steps',
        '2', '--device', 'cpu', '--no-ptr', '--no-progress', '--out-dir', str(tmp_path)
    ])
    rows = result['train']
    assert [r['name'] for r in rows] == [osp.basename(TINY_MAE)[:-3], osp.basename(TINY_PCAE)[:-3]]
    for r in rows:
        assert len(r['step_times_s']) == 2 and r['step_time_s'] > 0
        assert r['peak_memory_mb'] > 0 and r['memory_method'] == 'live_tensor_peak'
        assert r['train_gflops_per_image'] > 0
    assert rows[0]['time_ratio'] == 1.0 and rows[0]['flops_ratio'] == 1.0
    # PCAE decodes 3 of 27 masked tokens and its teacher only forwards: fewer FLOPs than MAE
    assert rows[1]['flops_ratio'] < 1.0
    saved = json.load(open(tmp_path / 'benchmark.json'))
    assert saved['meta']['device'].startswith('CPU') and len(saved['train']) == 2
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| config |' in md and 'time / MAE' in md


def test_train_flops_are_counted_not_zero_for_attention():
    """The fused CPU attention kernel has a FLOP formula (torch has none for it)."""
    from tools.analysis.pcae_bench.flops import count_flops
    q = torch.randn(2, 4, 10, 8, requires_grad=True)

    def fwd_bwd():
        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()

    _, flops = count_flops(fwd_bwd)
    per_bmm = 2 * 2 * 4 * 10 * 10 * 8
    assert flops == 2 * per_bmm + 5 * per_bmm


def test_cpu_peak_memory_counts_resident_and_temporaries():
    from tools.analysis.pcae_bench.memory import PeakMemoryMeter
    lin = torch.nn.Linear(100, 100, bias=False)  # 40 kB of weights
    meter = PeakMemoryMeter('cpu')
    with meter.measure([lin]):
        y = torch.ones(1000, 100)  # 400 kB
        z = y * 2  # + 400 kB
        del y, z
        torch.ones(50, 100)  # 20 kB, after both were freed
    assert meter.peak_bytes == 40_000 + 800_000


def test_stock_mae_baseline_builds_from_mmpretrain():
    from tools.analysis.pcae_bench.builder import build_model, load_config, register_all
    from tools.analysis.pcae_bench.runner import MAE_BASELINE
    register_all()
    cfg = load_config(MAE_BASELINE)
    model = build_model(cfg, torch.device('cpu'), init=False)
    assert type(model).__module__.startswith('mmpretrain.')
    assert type(model).__name__ == 'MAE'


def test_bad_input_is_named():
    from tools.analysis.pcae_bench.builder import autocast_context, load_config, make_batch
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        load_config('no_such.py')
    with pytest.raises(FileNotFoundError, match='has no config'):
        load_config('mmpretrain::mae/no_such.py')
    with pytest.raises(ValueError, match='batch size'):
        make_batch(0, 32)
    with pytest.raises(ValueError, match='fp16'):
        autocast_context(torch.device('cpu'), 'fp16')


@pytest.mark.parametrize('tool', ['benchmark', 'ptr_flops'])
@pytest.mark.parametrize('how', ['module', 'path'])
def test_tools_run_as_modules_and_by_path(tool, how, tmp_path):
    """The documented ``python -m tools.analysis.<tool>`` from the repository root, and the
    file path from anywhere (tools/device runs it so), import the same package."""
    cmd, cwd = ((['-m', f'tools.analysis.{tool}'], ROOT) if how == 'module' else
                ([osp.join(ROOT, 'tools', 'analysis', f'{tool}.py')], str(tmp_path)))
    proc = subprocess.run([sys.executable, *cmd, '--help'], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert '--device' in proc.stdout
