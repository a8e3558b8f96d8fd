"""pcae_mm.utils.runtime.exit_process: ending a launched script without the gloo abort."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import atexit, sys
    import torch
    import torch.distributed as dist
    from pcae_mm.utils.runtime import exit_process

    class Teardown:
        def __del__(self):
            print('interpreter teardown ran', flush=True)

    keep = Teardown()  # a module global: its __del__ runs only in the interpreter teardown
    atexit.register(lambda: print('atexit handlers ran', flush=True))
    if sys.argv[1] == 'group':
        dist.init_process_group('gloo', store=dist.FileStore(sys.argv[2], 1), rank=0,
                                world_size=1)
        dist.all_reduce(torch.ones(3))
    status = sys.argv[3]
    exit_process(int(status) if status.isdigit() else status, barrier=sys.argv[4] == 'barrier')
    print('not reached', flush=True)
''')


def run_exit(tmp_path, group: bool, status: str, barrier: bool = False):
    return subprocess.run(
        [sys.executable, '-c', SCRIPT, 'group' if group else 'none', str(tmp_path / 'store'),
         status, 'barrier' if barrier else 'no'],
        capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('barrier', [True, False])
def test_with_a_process_group_it_skips_the_teardown_after_the_atexit_handlers(tmp_path, barrier):
    """The teardown is where a gloo worker thread, dropping the last collective's work, asks for
    the GIL and is ended by pthread_exit -> std::terminate -> SIGABRT (a launch that succeeded
    reported as failed). The atexit handlers (log flush, DataLoader workers) still run."""
    proc = run_exit(tmp_path, group=True, status='0', barrier=barrier)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'atexit handlers ran' in proc.stdout
    assert 'interpreter teardown ran' not in proc.stdout
    assert 'not reached' not in proc.stdout


def test_a_message_is_printed_and_exits_1_like_sys_exit(tmp_path):
    proc = run_exit(tmp_path, group=True, status='ConfigCheckError: bad key')
    assert proc.returncode == 1
    assert 'ConfigCheckError: bad key' in proc.stderr
    assert 'atexit handlers ran' in proc.stdout
    assert 'interpreter teardown ran' not in proc.stdout


@pytest.mark.parametrize('status,code', [('0', 0), ('3', 3), ('bad value', 1)])
def test_without_a_process_group_it_is_sys_exit(tmp_path, status, code):
    proc = run_exit(tmp_path, group=False, status=status)
    assert proc.returncode == code
    assert 'interpreter teardown ran' in proc.stdout  # the normal exit path, unchanged
    assert 'not reached' not in proc.stdout
    assert (status in proc.stderr) == (code == 1)
