"""A minimal runner driving a checkpoint hook, for the checkpoint tests (also run as a script:
``python ckpt_writer.py HOOK WORK_DIR`` writes epoch_1 and then hangs half-way through
epoch_2, printing WRITING, so a test can kill it mid-save)."""
import io
import os
import os.path as osp
import sys
import time

import torch
from mmengine.logging import MessageHub, MMLogger


class SlowFile(io.RawIOBase):
    """A file that stops (sleeps) after half of ``total`` bytes, as a writer being killed."""

    def __init__(self, path, total):
        self.f = open(path, 'wb')
        self.total = total
        self.written = 0

    def writable(self):
        return True

    def write(self, b):
        half = self.total // 2
        if self.written + len(b) > half:  # write up to the middle, then hang
            self.f.write(b[:half - self.written])
            self.f.flush()
            os.fsync(self.f.fileno())
            print('WRITING', flush=True)
            time.sleep(300)  # killed by the test long before
        n = self.f.write(b)
        self.written += n
        return n


class FakeRunner:
    """What CheckpointHook uses of mmengine's Runner; save_checkpoint writes model weights."""

    def __init__(self, work_dir, model=None, name='fake'):
        self.work_dir = str(work_dir)
        self.model = model if model is not None else torch.nn.Linear(64, 64)
        self.message_hub = MessageHub.get_instance(f'ckpt_{name}_{id(self)}')
        self.logger = MMLogger.get_instance(f'ckpt_{name}_{id(self)}')
        self.slow = False
        self.epoch = 0
        self.iter = 0

    def save_checkpoint(self, out_dir, filename, *args, meta=None, **kwargs):
        path = osp.join(out_dir, filename)
        ckpt = dict(meta=meta, state_dict=self.model.state_dict(),
                    message_hub=self.message_hub.state_dict())
        if self.slow:
            buf = io.BytesIO()
            torch.save(ckpt, buf)
            with SlowFile(path, buf.tell()) as f:
                f.write(buf.getvalue())
        else:
            torch.save(ckpt, path)


def make_hook(kind, **kwargs):
    import pcae_mm  # noqa: F401
    from mmengine.hooks import CheckpointHook
    from pcae_mm.engine.hooks import SafeCheckpointHook
    return (SafeCheckpointHook if kind == 'safe' else CheckpointHook)(interval=1, **kwargs)


def save(hook, runner, epoch):
    runner.epoch = epoch - 1
    hook._save_checkpoint_with_step(runner, epoch, meta=dict(epoch=epoch, iter=epoch))


if __name__ == '__main__':
    kind, work_dir = sys.argv[1], sys.argv[2]
    runner = FakeRunner(work_dir, torch.nn.Linear(512, 512))
    hook = make_hook(kind)
    hook.before_train(runner)
    save(hook, runner, 1)
    runner.slow = True
    save(hook, runner, 2)
