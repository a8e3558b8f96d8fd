"""The ViT-B / ViT-L pre-training recipes use the fast CPU pipeline by default, and both fast
paths train through tools/train.py at tiny sizes: the fast CPU pipeline (the tiny configs copy
the recipes' pipeline) and the GPU-decode pipeline with its preprocessor on the CPU (issue 24)."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from tests.helpers import ROOT
from tests.helpers.cli import load, run

TINY_PCAE = osp.join(ROOT, 'configs/pcae/pcae_vit-tiny-p16_1xb8-coslr-4e_tiny-in1k.py')
RECIPE = osp.join(ROOT, 'configs/pcae/pcae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
GPU_RECIPE = osp.join(ROOT,
                      'configs/pcae/pcae_vit-base-p16-gpudecode_8xb512-amp-coslr-300e_in1k.py')
FAST_TYPES = ['LoadImageFast', 'RandomResizedCropTensor', 'RandomFlipTensor', 'PackInputs']


def pretraining_recipes():
    """Every full-size pre-training config (ViT-B / ViT-L, all methods)."""
    paths = []
    for method in ('pcae', 'pr_mim', 'sdae', 'mr_mae'):
        paths += [p for p in sorted(glob.glob(osp.join(ROOT, 'configs', method, '*.py')))
                  if not any(k in osp.basename(p) for k in ('tiny', 'gpudecode', '-dali_'))]
    assert len(paths) >= 20
    return paths


@pytest.mark.parametrize('path', pretraining_recipes(), ids=osp.basename)
def test_recipes_use_the_fast_pipeline(path):
    cfg = Config.fromfile(path, import_custom_modules=False)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == FAST_TYPES
    crop = pipeline[1]
    assert (crop.scale, tuple(crop.crop_ratio_range), crop.interpolation) == \
        (224, (0.2, 1.0), 'bicubic')
    assert pipeline[2].prob == 0.5
    assert cfg.model.data_preprocessor.type == 'SelfSupDataPreprocessor'
    assert cfg.model.data_preprocessor.to_rgb  # LoadImageFast gives BGR, as LoadImageChecked
    assert cfg.train_dataloader.collate_fn.type == 'default_collate'


def test_tiny_configs_copy_the_recipe_pipeline():
    tiny = Config.fromfile(TINY_PCAE, import_custom_modules=False)
    full = Config.fromfile(RECIPE, import_custom_modules=False)
    tiny_pipe = tiny.train_dataloader.dataset.pipeline
    full_pipe = full.train_dataloader.dataset.pipeline
    assert [t.type for t in tiny_pipe] == [t.type for t in full_pipe]
    for a, b in zip(tiny_pipe, full_pipe):  # the same but for the image size
        assert {k: v for k, v in a.items() if k != 'scale'} == \
            {k: v for k, v in b.items() if k != 'scale'}
    assert tiny_pipe[1].scale == tiny.model.backbone.img_size


def test_gpu_decode_recipe_is_the_recipe_with_gpu_data():
    gpu = Config.fromfile(GPU_RECIPE, import_custom_modules=False)
    cpu = Config.fromfile(RECIPE, import_custom_modules=False)
    pre = gpu.model.data_preprocessor
    assert pre.type == 'GPUDecodeDataPreprocessor'
    assert (pre.mean, pre.std, pre.to_rgb) == (cpu.model.data_preprocessor.mean,
                                               cpu.model.data_preprocessor.std, True)
    assert [a.type for a in pre.augments] == FAST_TYPES[1:3]
    assert pre.augments[0] == cpu.train_dataloader.dataset.pipeline[1]  # the same crop
    assert pre.augments[1] == cpu.train_dataloader.dataset.pipeline[2]  # and flip
    assert [t.type for t in gpu.train_dataloader.dataset.pipeline] == ['LoadImageBytes',
                                                                     'PackInputs']
    assert gpu.train_dataloader.collate_fn.type == 'pseudo_collate'
    data_keys = {'train_dataloader', 'train_pipeline', 'data_preprocessor', 'model'}
    for key in set(cpu.keys()) | set(gpu.keys()):
        if key not in data_keys:
            assert gpu.get(key) == cpu.get(key), key
    gpu.model.pop('data_preprocessor')
    cpu.model.pop('data_preprocessor')
    assert gpu.model == cpu.model


def _train(tmp_path, config, data_root, *options):
    work = str(tmp_path / 'work')
    log = run([sys.executable, 'tools/train.py', config, '--work-dir', work, '--cfg-options',
               f'train_dataloader.dataset.data_root={data_root}', 'train_cfg.max_epochs=1',
               'default_hooks.logger.interval=1', *options])
    ckpt = load(osp.join(work, 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 2  # 16 images / batch 8
    dumped = Config.fromfile(glob.glob(osp.join(work, '*.py'))[0], import_custom_modules=False)
    return log, dumped


def test_vit_b_recipe_shrunk_trains_with_the_fast_pipeline(tmp_path, tiny_imagenet):
    log, cfg = _train(tmp_path, TINY_PCAE, tiny_imagenet)
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline] == FAST_TYPES
    assert 'Epoch(train) [1][2/2]' in log and 'loss:' in log


def test_gpu_decode_pipeline_trains_on_the_cpu(tmp_path, tiny_imagenet):
    """The GPU-decode data path (bytes in the workers, decode + crop + flip in the model's
    preprocessor; on the CPU here) through tools/train.py on the tiny PCAE."""
    gpu = Config.fromfile(GPU_RECIPE, import_custom_modules=False)
    tiny = Config.fromfile(TINY_PCAE, import_custom_modules=False)
    pre = gpu.model.data_preprocessor
    pre.augments[0].scale = tiny.model.backbone.img_size
    config = tmp_path / 'tiny_gpu_decode.py'
    config.write_text(
        f'_base_ = [{TINY_PCAE!r}]\n'
        f'model = dict(data_preprocessor=dict(_delete_=True, **{pre.to_dict()!r}))\n'
        'train_dataloader = dict(collate_fn=dict(type="pseudo_collate"), '
        'dataset=dict(pipeline=[dict(type="LoadImageBytes"), dict(type="PackInputs")]))\n')
    log, cfg = _train(tmp_path, str(config), tiny_imagenet)
    assert cfg.model.data_preprocessor.type == 'GPUDecodeDataPreprocessor'
    assert 'Epoch(train) [1][2/2]' in log and 'loss:' in log
