"""Put on PYTHONPATH by tests/ops_split.py in the half of the test run that needs no
compiled mmcv ops: every Python process the tests start hides ``mmcv._ext`` as well, exactly as
an mmcv-lite install would (``import`` fails, ``importlib.util.find_spec`` returns None)."""
import os
import sys

if os.environ.get('PCAE_MM_HIDE_MMCV_OPS') == '1':
    sys.modules['mmcv._ext'] = None
