"""Run tools/train.py several times in ONE process (one import, one process group).

    python tests/test_distributed/train_many.py RUNS.json            # single process
    python -m torch.distributed.run --nproc_per_node 2 \
        tests/test_distributed/train_many.py RUNS.json                # 2 processes (gloo on CPU)

RUNS.json is a list of tools/train.py argument lists; under torchrun each gets
``--launcher pytorch`` (what tools/dist_train.sh passes). Used by test_fsdp.py to keep the
CI cost to one interpreter start per process for all the algorithms.
"""
import json
import os
import sys

from pcae_mm.utils.runtime import exit_process
from tools.train import main

if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        runs = json.load(f)
    distributed = 'LOCAL_RANK' in os.environ and int(os.environ.get('WORLD_SIZE', 1)) > 1
    for argv in runs:
        main(argv + (['--launcher', 'pytorch'] if distributed else []))
    exit_process(0, barrier=True)
