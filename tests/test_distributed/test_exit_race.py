"""A gloo launch that finished ends with exit code 0 (docs/RELIABILITY.md, row 27).

The abort it guards against is a race (a gloo worker thread dropping the last collective's work
while Python tears down; ``pcae_mm.utils.runtime.exit_process``): one launch cannot prove its
absence, so the rate is measured with the same script in RELIABILITY.md; the deterministic part,
that the teardown is skipped after the atexit handlers, is tests/test_utils/test_runtime.py."""
import os.path as osp
import subprocess
import sys

from tests.helpers import ROOT, tool_env
from tests.helpers.cli import free_port

SCRIPT = osp.join(ROOT, 'tests', 'test_distributed', 'exit_race.py')


def test_two_gloo_processes_end_through_exit_process_with_code_0():
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
             '--master_addr=127.0.0.1', f'--master_port={free_port()}', SCRIPT, 'exit_process'],
            cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert 'terminate called' not in out
