"""tools/train.py run as a user runs it, with its exit code and output (not asserted): for
tests of refusals and error messages."""
import subprocess
import sys
from typing import NamedTuple

from . import ROOT, tool_env
from tools.tiny_data.configs import tiny_config


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def train_command(work_dir, data_root, *extra, config=None) -> list:
    """``python tools/train.py CONFIG --work-dir W [flags] --cfg-options data_root=D seed=0
    [options]`` (tiny PCAE by default); ``extra`` items holding ``=`` that are not flags are
    ``--cfg-options`` values."""
    options = [a for a in extra if '=' in a and not a.startswith('--')]
    flags = [a for a in extra if a not in options]
    return [sys.executable, 'tools/train.py', config or tiny_config('pcae'), '--work-dir',
            str(work_dir), *flags, '--cfg-options',
            f'train_dataloader.dataset.data_root={data_root}', 'randomness.seed=0', *options]


def run_train(work_dir, data_root, *extra, config=None, timeout=600) -> Result:
    """One tools/train.py process: its exit code and output."""
    proc = subprocess.run(train_command(work_dir, data_root, *extra, config=config), cwd=ROOT,
                          env=tool_env(), capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)
