"""Fixtures of the reliability tests: one short real run whose checkpoints several tests resume
(copied, never changed)."""
import pytest

from tests.helpers.train_cli import run_train


@pytest.fixture(scope='session')
def two_epoch_run(tmp_path_factory, tiny_imagenet) -> str:
    """One real 2-epoch tiny PCAE run for the whole session (batch 8, 2 iterations per epoch,
    its 4-epoch schedule stopped after 2): the work dir holds epoch_1.pth and epoch_2.pth. Copy
    it before use."""
    work = tmp_path_factory.mktemp('two_epoch_run') / 'work'
    result = run_train(work, tiny_imagenet, 'train_cfg.max_epochs=2')
    assert result.returncode == 0, result.output[-4000:]
    return str(work)
