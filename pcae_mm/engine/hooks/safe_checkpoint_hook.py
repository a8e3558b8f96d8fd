"""CheckpointHook that never loses work (issue 15): atomic files, finite weights, safe rotation."""
import errno
import os
import os.path as osp
import re
from typing import List

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...utils.checkpoint import CheckpointError

#: hidden temporary files of an unfinished save
TMP_PATTERN = r'^\..+\.tmp-\d+$'
#: errnos of a full disk or an exhausted quota
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _mb(n: int) -> str:
    return f'{n / 2**20:.1f} MB' if n < 2**30 else f'{n / 2**30:.2f} GB'


def nonfinite_tensors(module: torch.nn.Module) -> List[str]:
    """Names of the floating-point parameters and buffers of ``module`` holding inf or NaN.

    Reads the local tensors (shards under FSDP), never gathers them.
    """
    named = [(k, v) for k, v in list(module.named_parameters()) + list(module.named_buffers())
             if v.is_floating_point() and v.numel()]
    return [k for k, v in named if not bool(torch.isfinite(v.detach()).all())]


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:  # unsupported here: fine; data that could not be written: not
        if e.errno in _NO_SPACE + (errno.EIO, ):
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    try:
        with open(tmp, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` that never leaves a run without a good checkpoint.

    * **Atomic**: each checkpoint is written to a hidden temporary file in the same folder,
      flushed to disk and renamed over ``epoch_N.pth`` / ``iter_N.pth``; then
      ``last_checkpoint`` is replaced the same way. A kill or a full disk leaves the previous
      state or a complete new file, never a partial ``epoch_N.pth``.
    * **Finite**: when a parameter or buffer of the model holds inf or NaN, no file is written
      (an error is logged naming the tensors) and ``last_checkpoint`` keeps pointing at the last
      finite checkpoint.
    * **Safe rotation**: ``max_keep_ckpts`` deletes old checkpoints only after the new one is
      complete, so the newest finite checkpoint always survives.

    Arguments are those of :class:`~mmengine.hooks.CheckpointHook`. Checkpoints that are not
    on the local file system (``backend_args``) are saved by the parent class, without these
    guarantees.
    """

    _previous = None  # the last checkpoint this hook completed (or found when resuming)

    def _local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _no_space(self, runner, filename: str, previous, error: OSError) -> CheckpointError:
        """The error for a full disk: the path, the space needed and free, what is kept."""
        import shutil
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if previous and osp.isfile(previous):
            need, how = osp.getsize(previous), f'the size of {osp.basename(previous)}'
        else:  # no checkpoint yet: weights + two optimizer moments (AdamW)
            need = 3 * get_world_size() * sum(p.numel() * p.element_size()
                                              for p in model.parameters())
            how = 'an estimate: the weights and two optimizer moments'
        try:
            free = shutil.disk_usage(self.out_dir).free
        except OSError:
            free = None
        return CheckpointError(
            f'no space left on the device to save {filename} in {self.out_dir} '
            f'({error.strerror}): a checkpoint needs about {_mb(need)} ({how}), '
            + (f'{_mb(free)} are free' if free is not None else 'free space unknown')
            + '. Nothing was lost: the incomplete file was removed and the checkpoints saved '
            'before are complete' + (f' (last: {previous})' if previous else ' (none yet)')
            + '. Free space on that device (or save elsewhere: --work-dir, or '
            'default_hooks.checkpoint.out_dir), then continue with --resume. Old checkpoints '
            'are only rotated out after a new one is complete, so keep room for one more.')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        last = runner.message_hub.get_info('last_ckpt')  # a resumed run's last checkpoint
        self._previous = last if last and osp.isfile(last) else None
        if self._local() and is_main_process() and osp.isdir(self.out_dir):
            for name in os.listdir(self.out_dir):  # left by a run killed while saving
                if re.match(TMP_PATTERN, name):
                    os.remove(osp.join(self.out_dir, name))
                    runner.logger.warning(f'removed {name}: an incomplete checkpoint left by a '
                                          'run killed while saving')

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        filename = self.filename_tmpl.format(step)
        bad = nonfinite_tensors(model)
        count = torch.tensor(len(bad))
        if get_world_size() > 1:  # every rank takes the same decision (sharded models)
            all_reduce(count)
        if int(count):
            last = runner.message_hub.get_info('last_ckpt')
            runner.logger.error(
                f'not writing checkpoint {filename}: the model holds non-finite weights '
                f'({len(bad)} tensors, e.g. {bad[:3]}). The last finite checkpoint '
                + (f'{last} is kept.' if last else 'does not exist (none was written).'))
            return

        final = osp.join(self.out_dir, filename)
        dropped = []
        if self.max_keep_ckpts > 0:
            keep = list(self.keep_ckpt_ids)
            if not keep or keep[-1] != step:
                keep.append(step)
            while len(keep) > self.max_keep_ckpts:
                dropped.append(keep.pop(0))
            self.keep_ckpt_ids.clear()
            self.keep_ckpt_ids.extend(keep)
            runner.message_hub.update_info('keep_ckpt_ids', keep)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)

        tmp_name = f'.{filename}.tmp-{os.getpid()}'
        tmp = osp.join(self.out_dir, tmp_name)
        previous = self._previous  # the last complete checkpoint of this run
        try:
            runner.save_checkpoint(
                self.out_dir, tmp_name, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if is_main_process():
                _fsync(tmp)
        except BaseException as e:
            if is_main_process() and osp.exists(tmp):
                os.remove(tmp)
            if isinstance(e, OSError) and e.errno in _NO_SPACE:
                raise self._no_space(runner, filename, previous, e) from None
            raise
        if not is_main_process():
            return
        os.replace(tmp, final)
        _fsync(self.out_dir)
        self._previous = final
        try:
            atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), final)
        except OSError as e:
            if e.errno in _NO_SPACE:
                raise self._no_space(runner, 'last_checkpoint', final, e) from None
            raise
        for old in dropped:
            if old == step:
                continue
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)
