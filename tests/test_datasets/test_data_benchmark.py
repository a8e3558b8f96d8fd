"""``python -m tools.analysis.benchmark --data-only``: the mechanics (every pipeline runs, the
ratios and cores per GPU are computed from the measured rates, files written, bad input named);
never timings (issue 24)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.helpers import ROOT, dali_available, tool_env
from tools.analysis import benchmark
from tools.analysis.pcae_bench import data_pipeline

FAST = ['--data-images', '4', '--data-rounds', '1', '--data-files', '4', '--data-batch', '2',
        '--no-progress', '--device', 'cpu']


def test_every_pipeline_and_the_cores_per_gpu(tmp_path):
    affinity = os.sched_getaffinity(0)
    result = benchmark.main(['--data-only', '--out-dir', str(tmp_path), '--gpu-img-s',
                             'MAE=6000', 'PCAE=7500', *FAST])
    assert os.sched_getaffinity(0) == affinity  # the pin is undone
    rows = {r['name']: r for r in result['rows']}
    assert list(rows) == data_pipeline.default_pipelines()
    assert ('dali-preproc' in rows) == dali_available()  # timed where DALI is installed
    shipped = rows['shipped']['images_per_s']
    for r in rows.values():
        assert r['images_per_s'] > 0 and r['per_core']  # a CPU run: all per core
        assert r['ratio'] == pytest.approx(r['images_per_s'] / shipped)
        assert r['cpu_ratio'] == pytest.approx(r['images_per_cpu_s'] /
                                               rows['shipped']['images_per_cpu_s'])
        assert r['cores_per_gpu']['PCAE'] == pytest.approx(7500 / r['images_per_cpu_s'])
    meta = result['meta']
    assert meta['content'] == 'photographs' and meta['images'] == 4 and meta['cpus'] >= 1
    assert len(meta['load_before']) == 3 and meta['core'] in affinity
    saved = json.load(open(tmp_path / 'data_pipeline.json'))
    assert saved['rows'][0]['name'] == 'shipped'
    md = open(tmp_path / 'data_pipeline.md').read()
    assert '| pipeline | img/s per core |' in md and 'cores/GPU for PCAE (7500 img/s)' in md
    # the image set is written once and reused
    again = data_pipeline.make_image_set(str(tmp_path / 'data_images'), 4)
    assert again['paths'] == sorted(again['paths']) and len(again['paths']) == 4
    assert all(400 <= max(w, h) <= 500 for w, h in again['sizes'])


def test_without_dali_its_row_is_left_out_and_said_or_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'nvidia.dali', None)  # DALI is optional
    result = benchmark.main(['--data-only', '--out-dir', str(tmp_path), *FAST])
    assert [r['name'] for r in result['rows']] == list(data_pipeline.PIPELINES[:-1])
    assert 'dali-preproc not timed: NVIDIA DALI is not installed' in \
        data_pipeline.render(result)
    with pytest.raises(ImportError, match='pip install nvidia-dali-cuda120'):
        benchmark.main(['--data-only', '--out-dir', str(tmp_path), '--data-pipelines',
                        'dali-preproc', *FAST])


def test_gpu_throughput_from_a_step_time_or_a_gpu_benchmark(tmp_path):
    args = benchmark.parse_args(['--data-only', '--out-dir', str(tmp_path), '--step-time', '0.5',
                                 '--step-batch', '512'])
    assert data_pipeline.gpu_demand(args)['--step-time']['images_per_s'] == 1024
    bench = tmp_path / 'gpu.json'
    bench.write_text(json.dumps(dict(
        meta=dict(device_type='cuda', device='NVIDIA H200', batch_size=256, amp='bf16'),
        train=[dict(name='MAE (mmpretrain stock)', images_per_s=5000.0),
               dict(name='PCAE', images_per_s=6500.0)])))
    args = benchmark.parse_args(['--data-only', '--bench-json', str(bench)])
    demand = data_pipeline.gpu_demand(args)
    assert demand['PCAE']['images_per_s'] == 6500 and 'H200' in demand['PCAE']['source']
    bench.write_text(json.dumps(dict(meta=dict(device_type='cpu', device='cpu'), train=[])))
    with pytest.raises(ValueError, match='not a GPU'):
        data_pipeline.gpu_demand(args)
    with pytest.raises(ValueError, match='NAME=IMAGES_PER_S'):
        data_pipeline.gpu_demand(benchmark.parse_args(['--data-only', '--gpu-img-s', '6000']))


def test_own_images_and_a_missing_folder(tmp_path, photos):
    result = benchmark.main(['--data-only', '--out-dir', str(tmp_path), '--data-dir',
                             osp.dirname(photos[0]), '--data-pipelines', 'shipped', 'fast-cv2',
                             *FAST])
    assert [r['name'] for r in result['rows']] == ['shipped', 'fast-cv2']
    assert result['meta']['content'].startswith('files under')
    assert 'cores per GPU: no GPU throughput known' in data_pipeline.render(result)
    with pytest.raises(FileNotFoundError, match='no JPEG files'):
        benchmark.main(['--data-only', '--out-dir', str(tmp_path), '--data-dir',
                        str(tmp_path / 'empty'), *FAST])


def test_decoder_check_against_opencv(photos):
    """What the GPU run reports for nvjpeg (max / mean grey levels from OpenCV's decode); on
    the CPU torchvision's libjpeg-turbo decodes exactly as OpenCV's."""
    import torch
    check = data_pipeline.check_decoding(photos[:3], torch.device('cpu'))
    assert check == dict(device='cpu', max_abs=0, mean_abs=0.0)


def test_module_entry_point(tmp_path):
    """As a user runs it (and the GPU check: the script path)."""
    for cmd in ([sys.executable, '-m', 'tools.analysis.benchmark'],
                [sys.executable, 'tools/analysis/benchmark.py']):
        proc = subprocess.run(
            cmd + ['--data-only', '--out-dir', str(tmp_path), '--data-pipelines', 'fast-cv2',
                   *FAST], cwd=ROOT, capture_output=True, text=True, timeout=300,
            env=tool_env())
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 'img/s per core' in proc.stdout and 'data_pipeline.json' in proc.stdout
