"""tools/device/: the wheel kit and the GPU entry script's CPU dry run (what CI can check)."""
import json
import os
import os.path as osp
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tools.device import install_wheels

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def make_wheel(folder, name='fakepkg', version='1.0', tag='py3-none-any'):
    """A minimal wheel: one package whose VALUE names its version."""
    path = osp.join(folder, f'{name}-{version}-{tag}.whl')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(f'{name}/__init__.py', f'VALUE = {version!r}\n')
        z.writestr(f'{name}-{version}.dist-info/METADATA',
                   f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    return path


def test_wheel_list_pins_the_openmmlab_stack():
    specs = install_wheels.read_list(osp.join(ROOT, 'tools/device/wheels.txt'))
    assert specs['mmengine'] == '0.10.7' and specs['mmpretrain'] == '1.2.0'
    assert specs['mmcv-lite'] == '2.1.0'  # pure wheel, no compiled ops
    assert 'torch' not in specs and 'numpy' not in specs  # the GPU machine has them


def test_check_unpack_and_import(tmp_path):
    wheels, site = tmp_path / 'whl', tmp_path / 'site'
    wheels.mkdir()
    make_wheel(str(wheels))
    listing = tmp_path / 'wheels.txt'
    listing.write_text('# comment\nFakePkg==1.0\n')
    assert install_wheels.main([str(wheels), '--list', str(listing), '--check', '--target',
                                str(site)]) == 0
    out = subprocess.run([sys.executable, '-c', 'import fakepkg; print(fakepkg.VALUE)'],
                         env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == '1.0'


def test_check_names_every_problem(tmp_path):
    specs = {'fakepkg': '1.0', 'other': '2.0'}
    make_wheel(str(tmp_path), version='0.9')
    make_wheel(str(tmp_path), name='stray')
    make_wheel(str(tmp_path), name='native', tag='cp311-cp311-manylinux_2_17_x86_64')
    problems = '\n'.join(install_wheels.check(str(tmp_path), specs))
    assert 'fakepkg: fakepkg-0.9-py3-none-any.whl is not version 1.0' in problems
    assert 'other==2.0: missing' in problems
    assert 'stray-1.0-py3-none-any.whl: not in the list' in problems
    assert 'native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl: not installable' in problems
    assert install_wheels.prune(str(tmp_path), specs) == ['fakepkg-0.9-py3-none-any.whl']
    assert install_wheels.check(str(tmp_path / 'none'), specs)[0].startswith('no wheels')
    assert install_wheels.compatible(install_wheels.parse_wheel(
        'numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'))


@pytest.mark.skipif(not osp.isdir(osp.join(ROOT, '.whl')),
                    reason='no .whl/ here (tools/device/prepare_wheels.sh not run)')
def test_prepared_wheel_folder_is_ready_to_carry():
    assert install_wheels.check(osp.join(ROOT, '.whl'), install_wheels.read_list(
        osp.join(ROOT, 'tools/device/wheels.txt'))) == []


def test_prepare_wheels_fetches_the_whole_list(tmp_path):
    """The preparation step itself, as a user runs it (from PyPI, like the set-up), so the
    pinned list cannot rot between GPU windows."""
    dest = tmp_path / 'whl'
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools/device/prepare_wheels.sh'), str(dest)],
                          env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert install_wheels.check(str(dest), install_wheels.read_list(
        osp.join(ROOT, 'tools/device/wheels.txt'))) == []


def test_gpu_bench_cpu_dry_run(tmp_path):
    """The entry script end to end on tiny configs: environment, every method's step, the SDPA
    probe, PTR, summary.md. Uses this Python's packages (no wheels), as CI has them."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable, PCAE_MM_WHEELS=str(tmp_path / 'no_wheels'))
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools/device/gpu_bench.sh'), str(out),
                           '--device', 'cpu', '--tiny'], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['benchmark.json', 'benchmark.md', 'gpu_bench.log',
                                       'summary.md']
    result = json.load(open(out / 'benchmark.json'))
    rows = result['train']
    assert [r['name'].split('_')[0] for r in rows] == ['mae', 'pcae', 'pr-mim', 'sdae', 'mr-mae']
    assert not result['errors']
    for r in rows:
        # the CPU census emulates a GPU: no method's step may make the host wait
        assert r['syncs_per_step'] == 0, (r['name'], r['sync_sites'])
        assert r['sdpa'] == 'flash_cpu' and r['train_gflops_per_image'] > 0
        assert r['mfu'] is None  # no peak for a CPU
    assert result['meta']['sdpa_probe']['default']['kernels'] == {'flash_cpu': 1}
    assert result['meta']['sdpa_probe']['math']['ok']
    assert [p['drop_ratio'] for p in result['ptr']] == [0.0, 0.4]
    assert all(p['infer_images_per_s'] > 0 and p['train_images_per_s'] > 0
               for p in result['ptr'])
    summary = (out / 'summary.md').read_text()
    assert '| config | batch | step (ms) |' in summary and 'PTR fine-tune' in summary
    log = (out / 'gpu_bench.log').read_text()
    assert 'mmpretrain 1.2.0' in log and 'done in' in log


def test_gpu_bench_explains_missing_packages(tmp_path):
    """Without wheels and without mmpretrain the script says what to do, and fails."""
    env = dict(os.environ, PYTHON=sys.executable, PCAE_MM_WHEELS=str(tmp_path / 'no_wheels'),
               PYTHONPATH=str(tmp_path))
    (tmp_path / 'mmpretrain.py').write_text('raise ImportError("hidden for the test")\n')
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools/device/gpu_bench.sh'),
                           str(tmp_path / 'out'), '--device', 'cpu', '--tiny'], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert 'prepare_wheels.sh' in proc.stdout


def test_summary_tables_from_json(tmp_path):
    """summary.md: MFU / syncs / SDPA columns, and eager vs compiled when compile.json exists."""
    from tools.device import summarize
    meta = dict(device='NVIDIA H200', amp='bf16', torch='2.11.0', cuda='13.0', date='d',
                steps=10, warmup=3, rounds=1, memory_method='cuda_max_allocated',
                peak_tflops=989.4)
    row = dict(name='mae', batch_size=256, step_time_s=0.1, images_per_s=2560.,
               peak_memory_mb=20480., train_gflops_per_image=58.8, train_tflops_per_s=150.5,
               mfu=0.152, syncs_per_step=0, sdpa='flash', time_ratio=1., flops_ratio=1.,
               notes=[], sync_sites=[])
    json.dump(dict(meta=meta, train=[row], errors=[]), open(tmp_path / 'benchmark.json', 'w'))
    json.dump(dict(meta=meta, train=[dict(row, step_time_s=0.08)]),
              open(tmp_path / 'compile.json', 'w'))
    text = summarize.summarize(str(tmp_path))
    assert '| mae | 256 | 100.0 | 2560 | 20.0 | 58.8 | 150 | 15.2% | 0 | flash | 1.00 | 1.00 |' \
        in text
    assert '| mae | 100.0 | 80.0 | 1.25x |' in text
    assert 'MFU against 989.4 TFLOP/s' in text and 'PTR section: not reached' in text


def test_gpu_check_cpu_dry_run(tmp_path):
    """tools/device/gpu_check.sh end to end at tiny sizes on the CPU, as on the GPU: the
    benchmark table, the real Runner (tools/train.py --amp: CPU fp16 autocast + a real loss
    scaler) for PCAE and MAE 2 epochs then --resume to 3, the FSDP strategy through
    torch.distributed.run (1 process, gloo), the data-only benchmark, memory predictions
    against the benchmark's measurement, checkpoint sizes; at most 7 files."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable, PCAE_MM_WHEELS=str(tmp_path / 'no_wheels'),
               OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools/device/gpu_check.sh'), str(out),
                           '--device', 'cpu', '--tiny'], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    files = sorted(os.listdir(out))
    assert files == ['benchmark.json', 'check.json', 'gpu_check.log', 'logs.tar.gz',
                     'summary.md'] and len(files) <= 7
    check = json.load(open(out / 'check.json'))
    steps = {s['name']: s for s in check['steps']}
    for name in ('bench', 'pcae', 'pcae_resume', 'mae', 'mae_resume', 'fsdp', 'data'):
        assert steps[name]['status'] == 'ok', (name, steps[name])
    runs = check['runs']
    for name in ('pcae', 'mae'):
        r = runs[name]
        # 16 images / batch 8: 2 epochs of 2 iterations, then the resumed 3rd epoch
        assert r['per_launch_iters'] == [4, 2] and r['resumed_from'] == 'epoch: 2, iter: 4'
        assert r['loss_finite'] and sorted(r['checkpoints']) == [
            'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
        assert r['loss_scale'] == 65536.  # the real dynamic scaler's state, saved and resumed
        assert 0 <= r['median_data_time_s'] < r['median_time_s']
    assert runs['fsdp']['iterations'] == 2 and 'replicated' in runs['fsdp']['fsdp_units']
    # predicted = measured (the benchmark's CPU count) for what the benchmark ran
    mem = [m for m in check['memory'] if m['what'].startswith('benchmark')]
    assert len(mem) == 2 and all(abs(m['error']) < 0.01 for m in mem), mem
    assert all(m['predicted_mib'] for m in check['memory'])  # Runner and FSDP predicted too
    assert {c['name'] for c in check['checkpoint']} == {
        'pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k', 'mae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k'}
    summary = (out / 'summary.md').read_text()
    assert 'Real Runner (tools/train.py)' in summary and 'predicted MiB' in summary
    with tarfile.open(out / 'logs.tar.gz') as tar:
        names = tar.getnames()
        pcae_log = tar.extractfile('logs/pcae.log').read().decode()
    assert not any(n.endswith('.pth') for n in names)
    assert 'real dynamic loss scaler (DeviceAmpOptimWrapper' in pcae_log


def test_gpu_check_skips_steps_over_budget(tmp_path):
    """A budget too small for anything: every step is skipped, the summary is still made."""
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHON=sys.executable, PCAE_MM_WHEELS=str(tmp_path / 'no_wheels'),
               OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools/device/gpu_check.sh'), str(out),
                           '--device', 'cpu', '--tiny', '--budget', '30', '--steps',
                           'bench,pcae,fsdp'], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check = json.load(open(out / 'check.json'))
    assert {s['name']: s['status'] for s in check['steps']} == {
        'bench': 'skipped', 'pcae': 'skipped', 'pcae_resume': 'skipped', 'fsdp': 'skipped'}
    assert (out / 'summary.md').is_file()
