"""Every remaining bad input of issue 25 gets a message naming the problem and the fix: a work
dir that is a file, bad dataset folders, a full disk, a legacy checkpoint, mmengine's plain
FSDPStrategy, a divergence before any checkpoint; plus the second probe's inputs."""
import errno
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio.backends import LocalBackend
from mmengine.runner import Runner

import pcae_mm  # noqa: F401
from pcae_mm.datasets import ImageNetLayout
from pcae_mm.datasets.imagenet_layout import DatasetLayoutError
from pcae_mm.engine.fsdp import check_strategy_config
from pcae_mm.engine.hooks import DivergenceError, DivergenceGuardHook
from pcae_mm.utils.checkpoint import CheckpointError, check_complete, safe_load
from pcae_mm.utils.config_check import ConfigCheckError
from tests.helpers import ROOT, tiny_config, tool_env
from tests.helpers.train_cli import run_train
from tools import train as TOOL

TINY_PCAE = tiny_config('pcae')


def one_line(result, start):
    assert result.returncode == 1, result.output[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(start), result.stderr[-2000:]
    return result.stderr


def test_work_dir_naming_a_file(tmp_path, tiny_imagenet):
    """Was a bare FileExistsError from mmengine's mkdir."""
    path = tmp_path / 'notes.txt'
    path.write_text('mine')
    err = one_line(run_train(path, tiny_imagenet), 'NotADirectoryError: --work-dir')
    assert str(path) in err and 'is a file' in err
    assert path.read_text() == 'mine'


# ------------------------------------------------------------------------------ dataset folders
def layout(root, **kwargs):
    return ImageNetLayout(data_root=str(root), split='train', pipeline=[], **kwargs)


def test_empty_train_folder_names_it_and_the_layout(tmp_path):
    (tmp_path / 'train').mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        layout(tmp_path)
    msg = str(err.value)
    assert f"'{tmp_path / 'train'}' is empty" in msg and 'train/<class>/<image>' in msg


def test_images_directly_in_train_name_the_folder_and_the_fix(tmp_path, tiny_imagenet):
    (tmp_path / 'train').mkdir()
    for img in sorted((osp.join(tiny_imagenet, 'train', c, f) for c in
                       os.listdir(osp.join(tiny_imagenet, 'train'))
                       for f in os.listdir(osp.join(tiny_imagenet, 'train', c))))[:5]:
        shutil.copy(img, tmp_path / 'train')
    with pytest.raises(DatasetLayoutError) as err:
        layout(tmp_path)
    msg = str(err.value)
    assert '5 images' in msg and 'lie directly in' in msg and 'train/all/' in msg


def test_class_folders_without_images_name_the_extensions(tmp_path):
    (tmp_path / 'train' / 'cat').mkdir(parents=True)
    (tmp_path / 'train' / 'cat' / 'notes.txt').write_text('x')
    with pytest.raises(DatasetLayoutError, match=r'no images under .*\.jpg'):
        layout(tmp_path)


def test_symlink_loop_in_a_class_folder_names_the_link(tmp_path, tiny_imagenet):
    """Was a 22-frame traceback (OSError: too many levels of symbolic links); end to end."""
    data = tmp_path / 'data'
    shutil.copytree(osp.join(tiny_imagenet, 'train'), data / 'train')
    link = data / 'train' / sorted(os.listdir(data / 'train'))[0] / 'loop'
    link.symlink_to('..')
    err = one_line(run_train(tmp_path / 'work', data, 'train_cfg.max_epochs=1'),
                   'DatasetLayoutError')
    assert 'symbolic link loop' in err and str(link) in err and 'Remove' in err


def test_link_to_itself_in_a_class_folder_is_named(tmp_path, tiny_imagenet):
    shutil.copytree(osp.join(tiny_imagenet, 'train'), tmp_path / 'train')
    link = tmp_path / 'train' / sorted(os.listdir(tmp_path / 'train'))[0] / 'self.JPEG'
    link.symlink_to('self.JPEG')
    with pytest.raises(DatasetLayoutError, match='symbolic link loop.*self.JPEG'):
        layout(tmp_path)


def test_a_directory_named_like_an_image_is_not_an_image(tmp_path, tiny_imagenet):
    """Second probe: train/<class>/x.jpg/ is a folder: skipped (its images are listed)."""
    shutil.copytree(osp.join(tiny_imagenet, 'train'), tmp_path / 'train')
    cls = sorted(os.listdir(tmp_path / 'train'))[0]
    (tmp_path / 'train' / cls / 'x.jpg').mkdir()
    ds = layout(tmp_path)
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    assert len(paths) == 16 and not any(p.endswith('x.jpg') for p in paths)


# ------------------------------------------------------------------------------------ full disk
def in_process_run(work, data_root, *options):
    args = TOOL.parse_args([TINY_PCAE, '--work-dir', str(work), '--cfg-options',
                            f'train_dataloader.dataset.data_root={data_root}',
                            f'experiment_name=bad_{work.name}', *options])
    return Runner.from_cfg(TOOL.merge_args(Config.fromfile(TINY_PCAE), args))


def test_full_disk_at_save_time_names_path_and_space(tmp_path, tiny_imagenet, monkeypatch):
    """The write of epoch_2.pth fails half-way with ENOSPC: a CheckpointError naming the file,
    the folder, the space needed (epoch_1.pth's size) and free; epoch_1.pth and
    last_checkpoint stay intact, no partial file is left."""
    put = LocalBackend.put

    def full_after_first(self, obj, filepath):
        if '.epoch_2.pth.tmp' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device', str(filepath))
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', full_after_first)
    work = tmp_path / 'work'
    runner = in_process_run(work, tiny_imagenet, 'train_cfg.max_epochs=2')
    with pytest.raises(CheckpointError) as err:
        runner.train()
    msg = str(err.value)
    size = osp.getsize(work / 'epoch_1.pth')
    assert 'no space left' in msg and 'epoch_2.pth' in msg and str(work) in msg
    assert f'{size / 2**20:.1f} MB (the size of epoch_1.pth)' in msg and 'are free' in msg
    assert 'Nothing was lost' in msg and '--resume' in msg
    assert sorted(p.name for p in work.iterdir() if p.is_file()) == [
        'epoch_1.pth', 'last_checkpoint', osp.basename(TINY_PCAE)]
    check_complete(str(work / 'epoch_1.pth'))
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')


def user_namespaces() -> bool:
    try:
        return subprocess.run(['unshare', '-Urm', 'true'], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


DISK_FULL = """
set -e
mkdir -p "$MNT"
mount -t tmpfs -o size=9m tmpfs "$MNT"
set +e
"$PY" tools/train.py "$CFG" --work-dir "$MNT/work" --cfg-options \
    train_dataloader.dataset.data_root="$DATA" train_cfg.max_epochs=3 \
    > "$OUT/stdout" 2> "$OUT/stderr"
echo $? > "$OUT/rc"
ls -a "$MNT/work" > "$OUT/files"
"$PY" -c "from pcae_mm.utils.checkpoint import check_complete; \
check_complete('$MNT/work/epoch_1.pth'); print('complete')" > "$OUT/check" 2>&1
"""


@pytest.mark.skipif(not user_namespaces(), reason='needs unprivileged user namespaces '
                    '(unshare -Urm) for a private tmpfs')
def test_real_full_disk_on_a_tiny_tmpfs(tmp_path, tiny_imagenet):
    """tools/train.py on a real 9 MB file system: epoch_1.pth (5.2 MB) fits, epoch_2.pth does
    not. One-line CheckpointError; epoch_1.pth complete; no partial file."""
    out = tmp_path / 'out'
    out.mkdir()
    env = tool_env(MNT=str(tmp_path / 'mnt'), OUT=str(out), PY=sys.executable, CFG=TINY_PCAE,
                   DATA=tiny_imagenet)
    subprocess.run(['unshare', '-Urm', 'bash', '-c', DISK_FULL], cwd=ROOT, env=env,
                   timeout=600, check=True)
    err = (out / 'stderr').read_text()
    assert (out / 'rc').read_text().strip() == '1', err[-3000:]
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1].startswith('CheckpointError: no space left')
    assert 'the size of epoch_1.pth' in err and 'are free' in err
    files = (out / 'files').read_text().split()
    assert 'epoch_1.pth' in files and 'epoch_2.pth' not in files
    assert not [f for f in files if '.tmp-' in f]
    assert (out / 'check').read_text().strip() == 'complete'


def test_interrupt_during_a_save_keeps_the_previous_checkpoint(tmp_path, tiny_imagenet,
                                                               monkeypatch):
    """Second probe: Ctrl-C while epoch_2.pth is written (KeyboardInterrupt in the write)."""
    put = LocalBackend.put

    def interrupted(self, obj, filepath):
        if '.epoch_2.pth.tmp' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:1000])
            raise KeyboardInterrupt
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', interrupted)
    work = tmp_path / 'work'
    with pytest.raises(KeyboardInterrupt):
        in_process_run(work, tiny_imagenet, 'train_cfg.max_epochs=2').train()
    assert not [p for p in work.iterdir() if '.tmp-' in p.name]
    check_complete(str(work / 'epoch_1.pth'))
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')


# ------------------------------------------------------------------------------- checkpoints
def test_legacy_format_checkpoint_loads_and_resumes(two_epoch_run, tmp_path, tiny_imagenet):
    """A valid non-zip checkpoint (torch.save(..., _use_new_zipfile_serialization=False)) was
    called 'incomplete or corrupt ... killed during a save'."""
    legacy = tmp_path / 'legacy.pth'
    torch.save(safe_load(osp.join(two_epoch_run, 'epoch_1.pth')), legacy,
               _use_new_zipfile_serialization=False)
    check_complete(str(legacy))
    assert safe_load(str(legacy))['meta']['epoch'] == 1
    result = run_train(tmp_path / 'work', tiny_imagenet, '--resume', str(legacy),
                       'train_cfg.max_epochs=2')
    assert result.returncode == 0, result.output[-3000:]
    assert 'resumed epoch: 1, iter: 2' in result.output
    assert safe_load(str(tmp_path / 'work' / 'epoch_2.pth'))['meta']['epoch'] == 2
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(legacy.read_bytes()[:legacy.stat().st_size // 2])
    with pytest.raises(CheckpointError, match='legacy-format .* cut short'):
        check_complete(str(cut))
    with pytest.raises(CheckpointError, match='incomplete or corrupt'):
        safe_load(str(cut))


def test_resume_with_a_directory_says_what_to_give(tmp_path):
    """Second probe: --resume WORK_DIR (a folder) was 'does not exist'."""
    with pytest.raises(IsADirectoryError, match=r'is a directory.*--work-dir .* --resume'):
        TOOL.merge_args(Config.fromfile(TINY_PCAE), TOOL.parse_args(
            [TINY_PCAE, '--work-dir', str(tmp_path / 'w'), '--resume', str(tmp_path)]))


# ------------------------------------------------------------------------------------ FSDP
def test_mmengines_fsdp_strategy_is_refused_before_building(tmp_path, tiny_imagenet):
    """mmengine's FSDPStrategy as its docs show it (the issue: an IndexError deep inside the
    teacher): refused naming the shipped strategy base, before anything is built."""
    strategy = ("strategy=dict(type='FSDPStrategy', model_wrapper=dict(auto_wrap_policy=dict("
                "type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy', "
                "min_num_params=10000000)))")
    err = one_line(run_train(tmp_path / 'work', tiny_imagenet, 'runner_type=FlexibleRunner',
                             strategy), 'ConfigCheckError: PCAE has teachers')
    assert "'FSDPStrategy'" in err and "'MMFullyShardedDataParallel'" in err
    assert 'configs/_base_/strategies/fsdp_bf16.py' in err or 'strategies/fsdp_bf16.py' in err
    assert not (tmp_path / 'work').exists()
    shipped = Config.fromfile(osp.join(
        ROOT, 'configs/pcae/pcae_vit-large-p16_8xb512-fsdp-coslr-800e_in1k.py'))
    check_strategy_config(shipped)  # the shipped strategy passes
    shipped.strategy.model_wrapper.type = 'MMFullyShardedDataParallel'
    with pytest.raises(ConfigCheckError, match='shards the teacher'):
        check_strategy_config(shipped)


# ------------------------------------------------------------------------------ divergence
def test_divergence_before_any_checkpoint_does_not_say_resume(tmp_path):
    from types import SimpleNamespace

    from mmengine.logging import MessageHub, MMLogger
    hook = DivergenceGuardHook(patience=1)
    runner = SimpleNamespace(iter=0, epoch=0, max_epochs=4, optim_wrapper=None,
                             message_hub=MessageHub.get_instance('no_ckpt_guard'),
                             logger=MMLogger.get_instance('no_ckpt_guard'))
    hook.before_train_iter(runner, 0)
    with pytest.raises(DivergenceError) as err:
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(float('nan'))})
    msg = str(err.value)
    assert 'No checkpoint was written yet' in msg and 'resume from it' not in msg
    assert 'start the run again' in msg
    runner.message_hub.update_info('last_ckpt', 'work/epoch_2.pth')
    hook.before_train_iter(runner, 0)
    with pytest.raises(DivergenceError, match=r'resume from it \(--resume work/epoch_2.pth\)'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(float('nan'))})


# ------------------------------------------------------------------------- second probe: misc
def test_missing_config_and_missing_resume_file_are_one_line(tmp_path, tiny_imagenet):
    result = run_train(tmp_path / 'w', tiny_imagenet, config='configs/pcae/nope.py')
    assert 'does not exist' in one_line(result, 'FileNotFoundError: config file')
    result = run_train(tmp_path / 'w', tiny_imagenet, '--resume', str(tmp_path / 'gone.pth'))
    assert 'gone.pth' in one_line(result, 'FileNotFoundError: --resume checkpoint')


@pytest.mark.skipif(not user_namespaces(), reason='needs unshare -Urm for a read-only mount')
def test_work_dir_on_a_read_only_file_system_is_named(tmp_path, tiny_imagenet):
    """Second probe: a work dir that cannot be written (permissions do not bind root, so a
    read-only mount stands in)."""
    script = ('mkdir -p "$MNT" && mount -t tmpfs -o ro tmpfs "$MNT" && '
              '"$PY" tools/train.py "$CFG" --work-dir "$MNT/work" --cfg-options '
              'train_dataloader.dataset.data_root="$DATA"')
    env = tool_env(MNT=str(tmp_path / 'ro'), PY=sys.executable, CFG=TINY_PCAE, DATA=tiny_imagenet)
    proc = subprocess.run(['unshare', '-Urm', 'bash', '-c', script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith('PermissionError: cannot create the work dir')
    assert 'Read-only file system' in proc.stderr


def test_launcher_without_its_launch_is_named(tmp_path, tiny_imagenet, monkeypatch):
    """Second probe: --launcher pytorch without torchrun was KeyError: 'RANK' deep in mmengine."""
    from pcae_mm.utils.run_shape import LaunchError
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(LaunchError, match=r'--launcher pytorch: .*no RANK.*tools/dist_train.sh'):
        TOOL.main([TINY_PCAE, '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', f'train_dataloader.dataset.data_root={tiny_imagenet}'])
    assert not (tmp_path / 'w').exists()


def test_a_file_that_is_no_checkpoint_is_not_called_a_killed_save(tmp_path):
    """Second probe: a text file given as --resume was 'probably written by a run killed
    during a save'."""
    notes = tmp_path / 'notes.pth'
    notes.write_text('hello')
    with pytest.raises(CheckpointError, match=r"is not a torch checkpoint .*b'hello'") as err:
        check_complete(str(notes))
    assert 'killed' not in str(err.value)


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match='is a directory: give one of its .py files'):
        TOOL.main([osp.join(ROOT, 'configs', 'pcae'), '--work-dir', str(tmp_path)])
