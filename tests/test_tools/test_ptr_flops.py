"""PTR fine-tune configs and tools/analysis/ptr_flops.py: MACs reproduce PCAE Table 5."""
import glob
import json
import os.path as osp

import pytest

from tests.helpers import ROOT

PTR_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/pcae/benchmarks/vit-base-p16_ptr-drop*.py')))


def test_drop_ratio_mapping():
    from tools.analysis.pcae_bench.ptr import drop_ratio_of, ptr_token_reduction
    assert ptr_token_reduction(0) is None
    tr = ptr_token_reduction(0.4)
    assert tr == dict(locations=[1, 5], keep_ratio=0.6)
    assert drop_ratio_of(tr) == 0.4 and drop_ratio_of(None) == 0.0
    with pytest.raises(ValueError, match='drop ratio'):
        ptr_token_reduction(1.0)
    with pytest.raises(ValueError, match='location'):
        ptr_token_reduction(0.2, locations=())


def test_ptr_configs_reproduce_table5_macs(tmp_path):
    """Counted MACs (deterministic, batch 1, no timing) within 2% of Table 5."""
    from tools.analysis import ptr_flops
    from tools.analysis.pcae_bench.ptr import TABLE5
    assert len(PTR_CONFIGS) == 5
    result = ptr_flops.main(['--macs-only', '--device', 'cpu', '--no-progress', '--out-dir',
                             str(tmp_path), '--ptr-configs', *PTR_CONFIGS])
    rows = result['ptr']
    assert [r['drop_ratio'] for r in rows] == sorted(TABLE5)
    for r in rows:
        assert abs(r['gmacs'] / TABLE5[r['drop_ratio']]['gmacs'] - 1) <= 0.02, r
    assert rows[-1]['token_counts'] == [196, 117, 70]
    assert all(t['met'] for t in result['targets'] if 'MACs' in t['target'])
    saved = json.load(open(tmp_path / 'ptr_flops.json'))
    assert len(saved['ptr']) == 5
    assert 'paper GMACs' in (tmp_path / 'ptr_flops.md').read_text()


def test_ptr_tool_times_inference_and_finetune_on_a_tiny_classifier(tmp_path):
    """--ptr-drop-ratios on a base config: throughput mechanics, speed-up column."""
    from tools.analysis import ptr_flops
    tiny = osp.join(ROOT, 'tools/device/tiny_finetune.py')  # the GPU kit's CPU dry-run config
    result = ptr_flops.main([
        '--ptr-base', tiny, '--ptr-drop-ratios', '0', '0.5', '--ptr-locations', '0', '1',
        '--ptr-batch-size', '2', '--warmup', '0', '--steps', '1', '--ptr-train', '--device',
        'cpu', '--no-progress', '--out-dir', str(tmp_path)
    ])
    full, dropped = result['ptr']
    assert full['token_counts'] == [16] and dropped['token_counts'] == [16, 8, 4]
    assert dropped['gmacs'] < full['gmacs']
    for r in result['ptr']:
        assert r['infer_images_per_s'] > 0 and r['train_images_per_s'] > 0
    assert full['infer_speedup'] == 1.0
    assert (tmp_path / 'ptr_flops.md').exists()
