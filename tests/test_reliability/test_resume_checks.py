"""tools/train.py protects work dirs and checks what --resume is given (issue 15)."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import pcae_mm  # noqa: F401
from pcae_mm.utils.checkpoint import CheckpointError
from tests.helpers import tiny_config
from tools import train as TOOL

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_PCAE, TINY_SDAE = tiny_config('pcae'), tiny_config('sdae')




def merge(*argv):
    args = TOOL.parse_args(list(argv))
    return TOOL.merge_args(Config.fromfile(args.config), args)


def fake_run(work):
    work.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': {'w': torch.zeros(2)}}, work / 'epoch_1.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, work / 'epoch_2.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))


def test_new_run_in_a_work_dir_with_checkpoints_is_refused(tmp_path):
    fake_run(tmp_path)
    with pytest.raises(FileExistsError) as err:
        merge(TINY_PCAE, '--work-dir', str(tmp_path))
    msg = str(err.value)
    assert str(tmp_path) in msg and 'epoch_2.pth' in msg
    assert '--resume' in msg and '--work-dir' in msg and '--overwrite' in msg
    assert (tmp_path / 'epoch_2.pth').exists()  # nothing touched


def test_overwrite_deletes_the_previous_checkpoints(tmp_path):
    fake_run(tmp_path)
    merge(TINY_PCAE, '--work-dir', str(tmp_path), '--overwrite')
    assert not (tmp_path / 'epoch_1.pth').exists() and not (tmp_path / 'last_checkpoint').exists()


def test_empty_or_log_only_work_dir_is_fine(tmp_path):
    (tmp_path / '20261202_000000').mkdir()  # logs of a run that wrote no checkpoint
    assert merge(TINY_PCAE, '--work-dir', str(tmp_path)).work_dir == str(tmp_path)


def test_resume_of_an_incomplete_file_names_it(tmp_path):
    fake_run(tmp_path)
    cut = tmp_path / 'epoch_3.pth'
    cut.write_bytes((tmp_path / 'epoch_2.pth').read_bytes()[:100])
    with pytest.raises(CheckpointError, match='epoch_3.pth.*incomplete or corrupt'):
        merge(TINY_PCAE, '--work-dir', str(tmp_path), '--resume', str(cut))
    zero = tmp_path / 'epoch_4.pth'
    zero.write_bytes(b'')
    with pytest.raises(CheckpointError, match='epoch_4.pth.*incomplete or corrupt'):
        merge(TINY_PCAE, '--work-dir', str(tmp_path), '--resume', str(zero))


def test_auto_resume_skips_to_the_last_complete_checkpoint(tmp_path):
    fake_run(tmp_path)
    cut = tmp_path / 'epoch_3.pth'
    cut.write_bytes(b'')  # a 0-byte file left by an in-place writer that was killed
    (tmp_path / 'last_checkpoint').write_text(str(cut))
    cfg = merge(TINY_PCAE, '--work-dir', str(tmp_path), '--resume')
    assert cfg.resume and cfg.load_from == str(tmp_path / 'epoch_2.pth')


def test_auto_resume_with_only_broken_checkpoints_is_an_error(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match='no complete checkpoint'):
        merge(TINY_PCAE, '--work-dir', str(tmp_path), '--resume')


def test_auto_resume_in_an_empty_work_dir_starts_a_new_run(tmp_path):
    cfg = merge(TINY_PCAE, '--work-dir', str(tmp_path), '--resume')
    assert cfg.resume and cfg.load_from is None


def train(config, work, data_root, *options, resume=None):
    argv = [config, '--work-dir', str(work)] + (['--resume', resume] if resume else [])
    argv += ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
             f'experiment_name=checks_{osp.basename(str(work))}', 'train_cfg.max_epochs=1',
             *options]
    runner = Runner.from_cfg(merge(*argv))
    runner.train()
    return runner


def test_resume_of_another_algorithm_or_architecture_is_refused(tmp_path, tiny_imagenet):
    train(TINY_SDAE, tmp_path / 'sdae', tiny_imagenet)
    sdae = str(tmp_path / 'sdae' / 'epoch_1.pth')
    with pytest.raises(CheckpointError) as err:
        train(TINY_PCAE, tmp_path / 'pcae_from_sdae', tiny_imagenet, resume=sdae)
    msg = str(err.value)
    assert "'SdAE'" in msg and "'PCAE'" in msg and 'epoch_1.pth' in msg

    train(TINY_PCAE, tmp_path / 'pcae', tiny_imagenet)
    pcae = str(tmp_path / 'pcae' / 'epoch_1.pth')
    with pytest.raises(CheckpointError) as err:  # same algorithm, other architecture
        train(TINY_PCAE, tmp_path / 'wide', tiny_imagenet,
              'model.backbone.arch.feedforward_channels=128', resume=pcae)
    msg = str(err.value)
    assert 'architecture' in msg and 'other shapes' in msg and 'PCAE' in msg


def test_train_script_reports_refusals_in_one_line(tmp_path):
    fake_run(tmp_path)
    proc = subprocess.run([sys.executable, 'tools/train.py', TINY_PCAE, '--work-dir',
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [ROOT, os.environ.get('PYTHONPATH', '')])))
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().startswith('FileExistsError: work dir') and '--overwrite' in \
        proc.stderr


def test_copied_checkpoint_resumes_from_its_own_path(tmp_path):
    """last_checkpoint may point elsewhere (a moved work dir): auto-resume falls back to the
    files that are there."""
    fake_run(tmp_path / 'old')
    shutil.copytree(tmp_path / 'old', tmp_path / 'moved')
    shutil.rmtree(tmp_path / 'old')
    cfg = merge(TINY_PCAE, '--work-dir', str(tmp_path / 'moved'), '--resume')
    assert cfg.load_from == str(tmp_path / 'moved' / 'epoch_2.pth')


def test_config_level_resume_is_not_a_new_run(tmp_path):
    fake_run(tmp_path)
    cfg = merge(TINY_PCAE, '--work-dir', str(tmp_path), '--cfg-options', 'resume=True')
    assert cfg.resume and (tmp_path / 'epoch_2.pth').exists()
