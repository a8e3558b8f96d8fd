"""CheckpointHook that never loses work (issue 15): atomic files, finite weights, safe rotation."""
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

#: hidden temporary files of an unfinished save
TMP_PATTERN = r'^\..+\.tmp-\d+$'


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
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
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

    def _local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
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
        try:
            runner.save_checkpoint(
                self.out_dir, tmp_name, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except BaseException:
            if is_main_process() and osp.exists(tmp):
                os.remove(tmp)
            raise
        if not is_main_process():
            return
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(self.out_dir)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), final)
        for old in dropped:
            if old == step:
                continue
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(path):
                os.remove(path)
