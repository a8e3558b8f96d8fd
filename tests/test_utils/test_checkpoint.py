import numpy as np
import torch
from mmengine.logging import HistoryBuffer

import pcae_mm  # noqa: F401
from pcae_mm.utils import allow_mmengine_checkpoints


def test_message_hub_objects_load_with_weights_only(tmp_path):
    assert allow_mmengine_checkpoints() is (hasattr(torch.serialization, 'add_safe_globals'))
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.5)
    ckpt = {'meta': {'seed': np.int64(3), 'iter': 2},
            'message_hub': {'log_scalars': {'train/loss': buf},
                            'runtime_info': {'arr': np.arange(3)}},
            'state_dict': {'w': torch.ones(2)}}
    path = tmp_path / 'c.pth'
    torch.save(ckpt, path)
    out = torch.load(path, map_location='cpu', weights_only=True)
    assert out['message_hub']['log_scalars']['train/loss'].mean() == 1.0
    assert out['meta']['seed'] == 3
