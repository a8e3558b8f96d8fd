"""torch.compile: graph breaks per part of every method (tools/analysis/graph_breaks.py) and
mmengine's ``compile`` switch through tools/train.py for every method.

CPU compile time is the cost here (2 cores): the Runner runs use TorchDynamo with
``fullgraph=True`` (any graph break in the forward is an error) and the ``eager`` backend
(tracing only), one run uses the default inductor backend (C++ code generation).
"""
import sys

import numpy as np
import pytest
import torch

import pcae_mm  # noqa: F401
from tests.helpers import ROOT, random_teacher_options, tiny_config
from tests.helpers.cli import run
from tools.analysis import graph_breaks

#: every method's tiny config (PR-MIM is PixelMAE + partial reconstruction)
METHODS = ['mae', 'pcae', 'pr_mim', 'sdae', 'mr_mae']


def test_graph_breaks_every_part_of_every_method(tmp_path):
    results = graph_breaks.main([tiny_config(m) for m in METHODS] +
                                ['--json', str(tmp_path / 'breaks.json')])
    assert [r['algorithm'] for r in results] == ['PixelMAE', 'PCAE', 'PixelMAE', 'SdAE',
                                                 'MRMAE']
    for res in results:
        parts = res['parts']
        assert 'backbone.forward' in parts, res['name']  # the student encoder
        assert any(p.startswith('neck.') for p in parts), res['name']  # the decoder
        assert 'head.loss' in parts, res['name']
        if res['algorithm'] in ('PCAE', 'SdAE'):
            assert 'teacher.forward' in parts  # the EMA teacher
        if res['algorithm'] == 'MRMAE':  # the frozen CLIP / DINO teachers, the mimic heads
            assert {'target_generator.clip.forward', 'target_generator.dino.forward',
                    'mimic_heads.clip.loss'} <= set(parts)
        for name, r in parts.items():
            assert r.get('error') is None, (res['name'], name, r)
            assert (r['graphs'], r['breaks']) == (1, 0), (res['name'], name, r['reasons'])
    assert (tmp_path / 'breaks.json').is_file()


def test_graph_break_tool_names_a_break_and_its_line():
    """The tool sees breaks: mmpretrain's numpy stochastic-depth rates (what
    ``float_drop_probs`` removes) break the encoder's graph at every block."""
    from mmcv.cnn.bricks.drop import DropPath

    from pcae_mm.models.backbones import MIMViT
    vit = MIMViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
                 img_size=32, patch_size=16, drop_path_rate=0.1)
    vit.train()
    for m in vit.modules():
        if isinstance(m, DropPath):
            m.drop_prob = np.float64(m.drop_prob)
    r = graph_breaks.explain(vit.forward, (torch.randn(2, 3, 32, 32), ), {}, True)
    assert r['breaks'] >= 2 and r['graphs'] == r['breaks'] + 1
    assert any('mmcv/cnn/bricks/drop.py' in x['where'] for x in r['reasons'])


def train_compiled(tmp_path, data_root, method, compile_opts):
    opts = [f'train_dataloader.dataset.data_root={data_root}', 'train_cfg.max_epochs=1',
            'default_hooks.logger.interval=1', 'log_processor.window_size=1'] + compile_opts
    if method.startswith('mr'):
        opts += random_teacher_options(tiny_config(method), tmp_path)
    return run([sys.executable, 'tools/train.py', tiny_config(method), '--work-dir',
                str(tmp_path / 'work'), '--cfg-options'] + opts)


@pytest.mark.parametrize('method', METHODS)
def test_train_with_compile_switch(method, tmp_path, tiny_imagenet):
    """``compile=dict(backend='eager', fullgraph=True)``: 2 iterations of the real Runner with
    the forward traced as one graph (a graph break would be an error), backward and the
    optimizer step as usual."""
    log = train_compiled(tmp_path, tiny_imagenet, method,
                         ['compile.backend=eager', 'compile.fullgraph=True'])
    assert 'torch.compile: the model forward' in log
    assert "'fullgraph': True" in log and 'Epoch(train) [1][2/2]' in log
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_train_with_inductor(tmp_path, tiny_imagenet):
    """``compile=True`` (torch's default inductor backend, C++ kernels on a CPU) for PCAE."""
    log = train_compiled(tmp_path, tiny_imagenet, 'pcae', ['compile=True'])
    assert 'torch.compile: the model forward (PCAE), options torch defaults' in log
    assert 'Epoch(train) [1][2/2]' in log and (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_prepare_compile_adds_the_hook_once():
    from mmengine.config import Config

    from pcae_mm.utils.runtime import prepare_compile
    cfg = Config(dict(custom_hooks=[dict(type='EMATeacherHook')]))
    prepare_compile(cfg)
    assert cfg.custom_hooks == [dict(type='EMATeacherHook')]  # no compile: nothing
    cfg.compile = True
    prepare_compile(cfg)
    prepare_compile(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['EMATeacherHook', 'CompileForwardHook']
    assert ROOT  # tests.helpers imported from the checkout
