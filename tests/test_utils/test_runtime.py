"""pcae_mm.utils.runtime: ending a launched run cleanly."""
import torch.distributed as dist

from pcae_mm.utils.runtime import close_process_group


def test_close_process_group_destroys_the_default_group(tmp_path):
    """tools/train.py ends with it: a gloo process that exits with its group alive can abort
    (SIGABRT) after a run that succeeded, and torchrun then reports the launch as failed."""
    store = dist.FileStore(str(tmp_path / 'store'), 1)
    dist.init_process_group('gloo', store=store, rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        close_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_close_process_group_without_a_group_does_nothing():
    assert not dist.is_initialized()
    close_process_group()
    assert not dist.is_initialized()
