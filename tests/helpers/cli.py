"""Running tools/*.py in subprocesses from tests."""
import socket
import subprocess

import torch

from . import ROOT, tool_env


def run(cmd, **kwargs) -> str:
    """Run ``cmd`` from the repository root with one OpenMP thread; assert it succeeded and
    return its stdout + stderr."""
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=600,
                          **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout + proc.stderr


def load(path):
    """A checkpoint as torch.load reads it (weights_only default on torch >= 2.6)."""
    return torch.load(path, map_location='cpu')


def free_port() -> int:
    """A TCP port nobody listens on now (for torch.distributed rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
