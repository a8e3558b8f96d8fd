"""The demo's size flags (issue 25): 0 or a negative number never silently drops a stage
(``--knn-epochs 0`` used to skip the learning check without a word); the message names
``--skip STAGE`` where the stage can be left out."""
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tools import demo


@pytest.mark.parametrize('flag,value,expected', [
    ('--knn-epochs', '0', '--skip knn'),
    ('--knn-epochs', '-1', '--skip knn'),
    ('--finetune-epochs', '0', '--skip classification'),
    ('--det-iters', '-5', '--skip mask_rcnn'),
    ('--seg-iters', '0', '--skip upernet'),
    ('--epochs', '0', 'cannot be skipped'),
    ('--images-per-class', '0', 'cannot be skipped'),
    ('--knn-epochs', 'ten', 'not a whole number'),
])
def test_non_positive_sizes_are_refused_naming_the_fix(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        demo.parse_args([flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f'argument {flag}' in err and expected in err


def test_positive_sizes_and_skip_still_work():
    args = demo.parse_args(['--knn-epochs', '3', '--skip', 'knn', 'upernet'])
    assert args.knn_epochs == 3 and args.skip == ['knn', 'upernet']


def test_the_demo_command_refuses_before_any_work():
    """As a user runs it (python -m tools.demo, what tools/run_demo.sh execs): exit 2 at once."""
    proc = subprocess.run([sys.executable, '-m', 'tools.demo', '--knn-epochs', '-1'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert 'argument --knn-epochs: -1 is not a positive number; to leave the stage out, pass ' \
        '--skip knn instead' in proc.stderr
