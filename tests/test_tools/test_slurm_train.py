"""tools/slurm_train.sh through mmengine's slurm launcher, with stand-ins for srun / scontrol.

The stand-in srun does what srun does for one node: it starts --ntasks copies of the command
with SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS / SLURM_NODELIST set. Everything after it
(tools/train.py --launcher slurm, mmengine's _init_dist_slurm, gloo DDP) is the real code.
"""
import os
import os.path as osp
import stat
import sys

import torch

from tests.helpers import ROOT, tiny_config, tool_env
from tests.helpers.cli import free_port

FAKE_SRUN = r'''#!/usr/bin/env bash
ntasks=1
while [[ $# -gt 0 && "$1" == -* ]]; do
  case "$1" in
    --ntasks=*) ntasks="${1#--ntasks=}" ;;
    -p|-n|-N|-c) shift ;;
  esac
  shift
done
echo "srun-stand-in: $ntasks tasks: $*" > "$SRUN_LOG"
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NODELIST=localhost "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
'''
FAKE_SCONTROL = '#!/usr/bin/env bash\necho 127.0.0.1\n'


def write_exe(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_slurm_train_two_tasks(tmp_path, tiny_imagenet):
    import subprocess
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    write_exe(bin_dir / 'srun', FAKE_SRUN)
    write_exe(bin_dir / 'scontrol', FAKE_SCONTROL)
    work = str(tmp_path / 'work')
    env = tool_env(PATH=f'{bin_dir}:{os.environ["PATH"]}', PYTHON=sys.executable, GPUS='2',
                   GPUS_PER_NODE='2', MASTER_PORT=str(free_port()),
                   SRUN_LOG=str(tmp_path / 'srun.log'))
    proc = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'partition', 'pcae-test', tiny_config('pcae'), work,
         '--cfg-options', f'train_dataloader.dataset.data_root={tiny_imagenet}',
         'train_cfg.max_epochs=1'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert 'Distributed launcher: slurm' in out and 'GPU number: 2' in out, out[-3000:]
    assert '--launcher=slurm' in (tmp_path / 'srun.log').read_text()
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 1  # 16 images / (2 tasks x batch 8)
