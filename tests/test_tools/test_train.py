"""tools/train.py and tools/dist_train.sh end to end on a tiny ImageNet-layout dataset."""
import os.path as osp
import subprocess
import sys

from mmpretrain.models import VisionTransformer

import pcae_mm  # noqa: F401  (allow-lists mmengine checkpoint globals for torch.load)
from tests.helpers import ROOT, tiny_config, tool_env
from tests.helpers.cli import free_port, load, run

TINY_PCAE = tiny_config('pcae')


def train(work_dir, data_root, epochs, *extra):
    return run([sys.executable, 'tools/train.py', TINY_PCAE, '--work-dir', work_dir,
                '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
                f'train_cfg.max_epochs={epochs}', *extra])


def test_train_saves_checkpoint_and_resume_continues(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'work')
    train(work, tiny_imagenet, 1)
    ckpt1 = load(osp.join(work, 'epoch_1.pth'))
    iters_per_epoch = ckpt1['meta']['iter']
    assert iters_per_epoch == 2  # 16 images / batch 8
    assert int(ckpt1['state_dict']['teacher.steps']) == iters_per_epoch

    log = train(work, tiny_imagenet, 2, '--resume')
    assert 'resumed epoch: 1, iter: 2' in log.lower()
    ckpt2 = load(osp.join(work, 'epoch_2.pth'))
    assert ckpt2['meta']['epoch'] == 2 and ckpt2['meta']['iter'] == 2 * iters_per_epoch
    # the EMA schedule continued where it stopped instead of restarting
    assert int(ckpt2['state_dict']['teacher.steps']) == 2 * iters_per_epoch
    assert 'Epoch(train) [1]' not in log  # the resumed run did not redo epoch 1

    # the backbone loads into mmpretrain's own VisionTransformer with no missing key
    backbone = {k[len('backbone.'):]: v for k, v in ckpt2['state_dict'].items()
                if k.startswith('backbone.')}
    vit = VisionTransformer(arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                      feedforward_channels=256), img_size=96, patch_size=16)
    result = vit.load_state_dict(backbone, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_two_process_cpu_ddp(tmp_path, tiny_imagenet):
    work = str(tmp_path / 'ddp')
    env = tool_env(PYTHON=sys.executable, PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY_PCAE, '2', '--work-dir', work, '--cfg-options',
         f'train_dataloader.dataset.data_root={tiny_imagenet}', 'train_cfg.max_epochs=1'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'Distributed training: True' in out and 'GPU number: 2' in out, out[-3000:]
    assert "'backend': 'gloo'" in out  # CPU: gloo chosen automatically
    ckpt = load(osp.join(work, 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 1  # 16 images / (2 processes x batch 8)


def test_missing_data_root_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', TINY_PCAE, '--work-dir', str(tmp_path),
         '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/nope'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=tool_env())
    assert proc.returncode != 0
    assert 'does not exist' in proc.stderr and 'nope' in proc.stderr
