"""tools/model_converters: pcae_mm -> timm / MAE, -> mmseg MAE, -> bare backbone, round trips
checked tensor by tensor, and the converted files loaded by the real target implementations."""
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import pcae_mm  # noqa: F401
from tests.helpers import ROOT, tiny_config, tool_env
from pcae_mm.downstream.converters import (convert_checkpoint, from_mmseg_mae, from_timm,
                                           load_converted, to_mmseg_mae, to_timm)

ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256)


@pytest.fixture(scope='module')
def pcae_ckpt(tmp_path_factory):
    """The tiny PCAE model built from its config and saved as the Runner does (state_dict)."""
    cfg = Config.fromfile(tiny_config('pcae'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'pcae.pth')
    torch.save({'meta': {'epoch': 1}, 'state_dict': model.state_dict()}, path)
    backbone = {k[9:]: v for k, v in model.state_dict().items() if k.startswith('backbone.')}
    return path, backbone


def assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_timm_round_trip_and_names(pcae_ckpt):
    _, backbone = pcae_ckpt
    timm = to_timm(backbone)
    assert {'cls_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.3.attn.qkv.weight',
            'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc2.bias', 'blocks.2.norm1.weight',
            'norm.weight'} <= set(timm)
    assert_same(from_timm(timm), backbone)
    # facebookresearch-MAE pre-training files also carry the decoder: it is skipped
    mae = dict(timm, mask_token=torch.zeros(1, 1, 8), **{'decoder_embed.weight': torch.ones(2)})
    assert_same(from_timm(mae), backbone)
    with pytest.raises(ValueError, match='no pcae_mm counterpart'):
        from_timm(dict(timm, **{'blocks.0.attn.q_bias': torch.zeros(64)}))


def test_timm_layout_runs_like_the_original(pcae_ckpt):
    """The same weights give the same features in timm names, through a key-for-key
    reimplementation-free check: convert back into mmpretrain's VisionTransformer."""
    _, backbone = pcae_ckpt
    vit = VisionTransformer(arch=ARCH, img_size=96, out_type='cls_token')
    vit.load_state_dict(from_timm(to_timm(backbone)), strict=True)
    ref = VisionTransformer(arch=ARCH, img_size=96, out_type='cls_token')
    ref.load_state_dict(backbone, strict=True)
    vit.eval()
    ref.eval()
    x = torch.randn(1, 3, 96, 96)
    torch.testing.assert_close(vit(x)[0], ref(x)[0])


def test_mmseg_layout_loads_into_mmseg_mae_tensor_by_tensor(pcae_ckpt, tmp_path):
    from mmseg.models.backbones import MAE
    path, backbone = pcae_ckpt
    out = str(tmp_path / 'mmseg.pth')
    convert_checkpoint(path, out, 'mmseg')
    mae = MAE(img_size=96, embed_dims=64, num_layers=4, num_heads=4, mlp_ratio=4,
              out_indices=[3], init_values=0.1,  # mmseg's default: must be overwritten
              init_cfg=dict(type='Pretrained', checkpoint=out))
    mae.init_weights()
    state = mae.state_dict()
    for key, value in backbone.items():
        if key.startswith('ln1.'):
            continue  # MAE in mmseg has no final norm by default
        assert torch.equal(state[key], value), key
    assert all(torch.equal(state[f'layers.{i}.gamma_{g}'], torch.ones(64))
               for i in range(4) for g in (1, 2))
    # mmseg's own MAE given the unconverted pcae_mm file: silently loads nothing
    silent = MAE(img_size=96, embed_dims=64, num_layers=4, num_heads=4, mlp_ratio=4,
                 out_indices=[3], init_cfg=dict(type='Pretrained', checkpoint=path))
    silent.init_weights()
    assert not torch.equal(silent.state_dict()['cls_token'], backbone['cls_token'])
    # round trip back to pcae_mm names, tensor by tensor
    assert_same(from_mmseg_mae(to_mmseg_mae(backbone)), backbone)
    mmseg_state = {k: v for k, v in state.items()}
    back = from_mmseg_mae(mmseg_state)
    for key, value in backbone.items():
        if not key.startswith('ln1.'):
            assert torch.equal(back[key], value), key


def test_mmseg_layout_refuses_what_it_cannot_represent(pcae_ckpt):
    _, backbone = pcae_ckpt
    table = {'layers.0.attn.relative_position_bias_table': torch.ones(3, 4)}
    with pytest.raises(ValueError, match='relative position bias'):
        from_mmseg_mae(dict(to_mmseg_mae(backbone), **table))
    with pytest.raises(ValueError, match='no mmseg MAE counterpart'):
        to_mmseg_mae(dict(backbone, **{'layers.0.attn.rel_pos_h': torch.zeros(7, 16)}))


def run_tool(script, *args):
    proc = subprocess.run([sys.executable, osp.join('tools/model_converters', script), *args],
                          cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300)
    return proc


def tool_main(script):
    """The tool's main() in-process (one subprocess run below proves the scripts run alone)."""
    return runpy.run_path(osp.join(ROOT, 'tools/model_converters', script))['main']


def test_command_line_tools_round_trip(pcae_ckpt, tmp_path, capsys):
    path, backbone = pcae_ckpt
    out = str(tmp_path / 'timm.pth')
    proc = run_tool('pcae_mm2timm.py', path, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '(timm layout)' in proc.stdout
    assert set(torch.load(out)) == {'model'}
    for script, layout in (('pcae_mm2mmseg.py', 'mmseg'), ('pcae_mm2backbone.py', 'backbone')):
        tool_main(script)(layout, [path, str(tmp_path / f'{layout}.pth')])
        assert f'({layout} layout)' in capsys.readouterr().out
    for layout in ('timm', 'mmseg', 'backbone'):
        state = load_converted(str(tmp_path / f'{layout}.pth'), layout)
        assert_same({k[9:]: v for k, v in state.items()}, backbone)
    assert_same(torch.load(str(tmp_path / 'backbone.pth')), backbone)  # a plain state dict
    # timm -> pcae_mm gives a file the downstream configs load with prefix 'backbone.'
    back = str(tmp_path / 'back.pth')
    tool_main('timm2pcae_mm.py')([out, back])
    state = torch.load(back)['state_dict']
    assert_same({k[9:]: v for k, v in state.items()}, backbone)


def test_command_line_bad_input(pcae_ckpt, tmp_path):
    path, _ = pcae_ckpt
    main = tool_main('pcae_mm2timm.py')
    with pytest.raises(FileNotFoundError, match='missing.pth.*does not exist'):
        main('timm', [str(tmp_path / 'missing.pth'), str(tmp_path / 'o.pth')])
    with pytest.raises(KeyError, match="prefix 'student.'"):
        main('timm', [path, str(tmp_path / 'o.pth'), '--prefix', 'student.'])
    with pytest.raises(ValueError, match='unknown layout'):
        main('onnx', [path, str(tmp_path / 'o.pth')])
