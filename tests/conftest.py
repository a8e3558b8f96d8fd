"""Fixtures shared by every test. Helpers (paths, config builders) are in ``tests.helpers``."""
import os

# One intra-op thread per process: tests run tiny models (overhead-bound), and on a 2-core
# machine several processes (pytest, DDP workers, tools/train.py subprocesses) each spinning 2
# OpenMP threads slow everything down up to 10x. Subprocesses inherit the variable.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

# Which tests need mmcv's compiled ops (--mmcv-ops=all|without|only, the needs_ops marker): the
# two halves of tools/run_tests.sh. The rules are in tests/ops_split.py.
from tests.ops_split import (pytest_addoption, pytest_collection_modifyitems,  # noqa: E402,F401
                             pytest_configure, pytest_ignore_collect, pytest_terminal_summary)


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory) -> str:
    """A small dataset in the real ImageNet folder/ann-file layout."""
    from tools.tiny_data import make_tiny_imagenet
    root = str(tmp_path_factory.mktemp('tiny_imagenet'))
    return make_tiny_imagenet(root, num_classes=4, train_per_class=4, val_per_class=2, size=96)
