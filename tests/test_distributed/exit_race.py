"""The end of a gloo launch, reduced to its race (tests/test_distributed/test_exit_race.py).

    python -m torch.distributed.run --nproc_per_node 2 tests/test_distributed/exit_race.py MODE

Two processes train a small DDP model for two steps, then end as MODE says:
``exit_process`` (what tools/train.py, tools/test.py and tools/analysis/knn_eval.py do),
``destroy`` (a barrier and ``destroy_process_group()``, then the normal interpreter exit) or
``none`` (the normal exit). With ``destroy`` and ``none`` a process can abort at the teardown
with "terminate called without an active exception" (SIGABRT; see
``pcae_mm.utils.runtime.exit_process``): measured in docs/RELIABILITY.md, row 27.
"""
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pcae_mm.utils.runtime import exit_process

if __name__ == '__main__':
    mode = sys.argv[1]
    dist.init_process_group('gloo')
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.LayerNorm(64), torch.nn.Linear(64, 8)))
    optim = torch.optim.AdamW(model.parameters())
    for _ in range(2):
        model(torch.randn(8, 64)).pow(2).mean().backward()  # B x 8 -> loss; allreduce of grads
        optim.step()
        optim.zero_grad()
    if mode == 'exit_process':
        exit_process(0, barrier=True)
    if mode == 'destroy':
        dist.barrier()
        dist.destroy_process_group()
