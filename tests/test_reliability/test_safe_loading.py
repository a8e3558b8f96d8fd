"""A malicious pickle is refused at every checkpoint load site, whatever the environment says
(weights_only=True is passed explicitly, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot undo it)."""
import os
import os.path as osp

import pytest
import torch

import pcae_mm  # noqa: F401
from pcae_mm.utils.checkpoint import CheckpointError
from tests.helpers import ROOT, tiny_config

TINY_PCAE = tiny_config('pcae')
TINY_VIT = dict(type='MIMViT', arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                         feedforward_channels=256), img_size=96, patch_size=16)


class Evil:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A checkpoint-looking file whose unpickling would create ``tmp_path/pwned``."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # a user's unsafe override
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    state = {'backbone.' + k: v for k, v in torch.nn.Linear(2, 2).state_dict().items()}
    torch.save({'meta': {'x': Evil(str(marker))}, 'state_dict': state}, path)
    yield str(path)
    assert not marker.exists(), 'the malicious pickle ran'


def test_mmengine_checkpoint_loader_refuses(evil):
    """load_from / --resume / tools/test.py / visualize_mim go through this loader."""
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(CheckpointError, match='evil.pth.*not weights'):
        _load_checkpoint(evil, map_location='cpu')


def test_resume_refuses(evil, tmp_path, tiny_imagenet):
    from tools import train as train_tool
    with pytest.raises(CheckpointError, match='evil.pth.*not weights'):
        train_tool.main([TINY_PCAE, '--work-dir', str(tmp_path / 'work'), '--resume', evil,
                   '--cfg-options', f'train_dataloader.dataset.data_root={tiny_imagenet}',
                   'experiment_name=evil_resume'])


def test_pretrained_init_cfg_refuses(evil):
    from mmpretrain.registry import MODELS
    vit = MODELS.build(dict(TINY_VIT, masking=False,
                            init_cfg=dict(type='Pretrained', checkpoint=evil, prefix='backbone.')))
    with pytest.raises(CheckpointError, match='evil.pth.*not weights'):
        vit.init_weights()


def test_frozen_teacher_refuses(evil):
    from pcae_mm.models.teachers.frozen_loading import read_state_dict
    with pytest.raises(ValueError, match='evil.pth.*cannot be read.*[Ww]eights'):
        read_state_dict(evil, 'clip')


def test_converters_refuse(evil, tmp_path):
    from pcae_mm.downstream.converters import convert_checkpoint, load_converted
    with pytest.raises(CheckpointError, match='evil.pth.*not weights'):
        convert_checkpoint(evil, str(tmp_path / 'out.pth'), 'timm')
    with pytest.raises(CheckpointError, match='evil.pth.*not weights'):
        load_converted(evil, 'timm')


def test_setup_requires_a_torch_that_defaults_to_weights_only():
    with open(osp.join(ROOT, 'setup.py')) as f:
        assert "'torch>=2.6'" in f.read()
