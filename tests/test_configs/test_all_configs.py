"""Every config under configs/ parses and builds its model; every metafile entry exists."""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from tests.helpers import ROOT, dali_available

CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))


def registry_for(cfg: Config):
    """The MODELS registry of the toolbox the config belongs to."""
    scope = cfg.get('default_scope', 'mmpretrain')
    if scope == 'mmdet':
        import mmdet.registry as reg
    elif scope == 'mmseg':
        import mmseg.registry as reg
    else:
        import mmpretrain.registry as reg
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    return reg.MODELS


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_parses_and_builds(path, monkeypatch):
    if '-dali_' in osp.basename(path) and not dali_available():
        pytest.skip('NVIDIA DALI is not installed (optional; tools/run_tests.sh installs it)')
    cfg = Config.fromfile(path)
    assert 'pcae_mm' in cfg.get('custom_imports', {}).get('imports', []), \
        'every config must import pcae_mm'
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    models = registry_for(cfg)
    model_cfg = cfg.model
    # Only the structure is checked here: frozen teachers (MR-MAE) are not read from their
    # checkpoints (their loading is tested in tests/test_models/test_teachers).
    from pcae_mm.models.teachers import frozen_teacher
    monkeypatch.setattr(frozen_teacher, 'read_state_dict', lambda *args, **kwargs: {})
    monkeypatch.setattr(frozen_teacher.FrozenTeacher, 'load_checkpoint',
                        lambda self, state=None: self.requires_grad_(False))
    # meta tensors: no memory, no init cost; MR-MAE reads its preprocessor's mean/std values
    device = 'cpu' if 'teachers' in model_cfg else 'meta'
    with torch.device(device):
        model = models.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def metafile_entries():
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))
    for meta in index['Import']:
        data = yaml.safe_load(open(osp.join(ROOT, meta)))
        for model in data['Models']:
            yield meta, model


def test_every_metafile_entry_points_at_an_existing_config():
    entries = list(metafile_entries())
    assert entries
    for meta, model in entries:
        cfg = model['Config']
        assert osp.isfile(osp.join(ROOT, cfg)), f'{meta}: {model["Name"]} -> missing {cfg}'
        assert osp.splitext(osp.basename(cfg))[0] == model['Name'], model['Name']


def test_every_method_metafile_is_indexed():
    index = yaml.safe_load(open(osp.join(ROOT, 'model-index.yml')))['Import']
    for meta in glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')):
        assert osp.relpath(meta, ROOT) in index, meta


def test_model_index_loads_with_modelindex():
    modelindex = pytest.importorskip('modelindex')
    mi = modelindex.load(osp.join(ROOT, 'model-index.yml'))
    assert len(mi.models) >= 1
