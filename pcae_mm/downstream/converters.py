"""Key-layout conversions between pcae_mm (mmpretrain ViT) and other ViT implementations.

pcae_mm checkpoints store the encoder under ``backbone.`` with mmpretrain's
``VisionTransformer`` names. The layouts here:

* **timm / facebookresearch-MAE** (also read by detectron2 / mmdet ViTDet):
  ``patch_embed.proj``, ``blocks.{i}.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2``,
  ``norm`` (final), ``fc_norm`` (pooled), ``ls1/ls2.gamma`` (layer scale); saved as
  ``{'model': state}`` like MAE's released files.
* **mmseg MAE**: mmpretrain's names without prefix, plus per-block layer scales ``gamma_1`` /
  ``gamma_2`` set to ones (mmseg's MAE initialises them to ``init_values``, 0.1 by default,
  which would scale the pre-trained residual branches if left out); saved as
  ``{'state_dict': state}``.
* **bare backbone**: mmpretrain's names without prefix, a plain state dict.

Every ``to_*`` has an exact inverse ``from_*`` (tested tensor by tensor).
"""
import re
from typing import Callable, Dict, List, Tuple

import torch

State = Dict[str, torch.Tensor]

# (pcae_mm / mmpretrain name, timm name); {i} is a block index, {p} a parameter name.
_TIMM_NAMES: List[Tuple[str, str]] = [
    ('cls_token', 'cls_token'),
    ('pos_embed', 'pos_embed'),
    ('patch_embed.projection.{p}', 'patch_embed.proj.{p}'),
    ('layers.{i}.ln1.{p}', 'blocks.{i}.norm1.{p}'),
    ('layers.{i}.attn.qkv.{p}', 'blocks.{i}.attn.qkv.{p}'),
    ('layers.{i}.attn.proj.{p}', 'blocks.{i}.attn.proj.{p}'),
    ('layers.{i}.attn.rel_pos_{p}', 'blocks.{i}.attn.rel_pos_{p}'),
    ('layers.{i}.attn.gamma1.weight', 'blocks.{i}.ls1.gamma'),
    ('layers.{i}.ln2.{p}', 'blocks.{i}.norm2.{p}'),
    ('layers.{i}.ffn.layers.0.0.{p}', 'blocks.{i}.mlp.fc1.{p}'),
    ('layers.{i}.ffn.layers.1.{p}', 'blocks.{i}.mlp.fc2.{p}'),
    ('layers.{i}.ffn.gamma2.weight', 'blocks.{i}.ls2.gamma'),
    ('ln1.{p}', 'norm.{p}'),
    ('ln2.{p}', 'fc_norm.{p}'),
]
_FIELDS = {'i': r'(?P<i>\d+)', 'p': r'(?P<p>weight|bias|h|w)'}


def _regex(template: str) -> str:
    return re.escape(template).replace(r'\{i\}', _FIELDS['i']).replace(r'\{p\}', _FIELDS['p'])


def _rename(state: State, names: List[Tuple[str, str]], layout: str) -> State:
    """Rename every key by the first (source template, target template) pair matching it."""
    rules = [(re.compile(_regex(src)), dst) for src, dst in names]
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, dst in rules:
            m = pattern.fullmatch(key)
            if m:
                out[dst.format(**m.groupdict())] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'{len(unknown)} keys have no {layout} counterpart: {unknown[:10]}')
    return out


def extract_backbone(state: State, prefix: str = 'backbone.') -> State:
    """Tensors under ``prefix``, prefix removed (a bare backbone state dict).

    Raises:
        KeyError: nothing under ``prefix`` (the message lists the prefixes present).
    """
    from ..utils.pretrained import strip_prefix
    return strip_prefix(state, prefix, 'the checkpoint')


def add_prefix(state: State, prefix: str = 'backbone.') -> State:
    """Inverse of :func:`extract_backbone`."""
    return {prefix + k: v for k, v in state.items()}


def to_timm(backbone: State) -> State:
    """Bare pcae_mm backbone -> timm / facebookresearch-MAE names."""
    return _rename(backbone, _TIMM_NAMES, 'timm')


def from_timm(state: State) -> State:
    """timm / facebookresearch-MAE encoder -> bare pcae_mm backbone.

    MAE pre-training files also hold the decoder (``decoder_*``, ``mask_token``): those are
    skipped; any other unknown key raises.
    """
    state = {k: v for k, v in state.items()
             if not k.startswith(('decoder', 'mask_token', 'head.'))}
    return _rename(state, [(b, a) for a, b in _TIMM_NAMES], 'pcae_mm')


def to_mmseg_mae(backbone: State) -> State:
    """Bare pcae_mm backbone -> mmseg ``MAE`` backbone names (adds ``gamma_1/2`` = 1)."""
    out = {}
    for key, value in backbone.items():
        m = re.fullmatch(r'layers\.(\d+)\.(attn\.gamma1|ffn\.gamma2)\.weight', key)
        if m:
            out[f'layers.{m.group(1)}.gamma_{m.group(2)[-1]}'] = value
        elif re.fullmatch(r'layers\.\d+\.attn\.rel_pos_[hw]', key):
            raise ValueError(f'{key}: decomposed relative positions have no mmseg MAE '
                             'counterpart')
        else:
            out[key] = value
    for i in sorted({int(k.split('.')[1]) for k in backbone if k.startswith('layers.')}):
        width = backbone[f'layers.{i}.ln1.weight'].shape[0]
        for g in ('gamma_1', 'gamma_2'):
            out.setdefault(f'layers.{i}.{g}', torch.ones(width))
    return out


def from_mmseg_mae(state: State) -> State:
    """mmseg ``MAE`` backbone -> bare pcae_mm backbone.

    Unit layer scales (what :func:`to_mmseg_mae` adds) and all-zero relative position bias
    tables (MAE's initialisation) are dropped; other values cannot be represented and raise.
    """
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r'layers\.(\d+)\.gamma_([12])', key)
        if m:
            if not torch.all(value == 1):
                out[f'layers.{m.group(1)}.' + ('attn.gamma1' if m.group(2) == '1'
                                                else 'ffn.gamma2') + '.weight'] = value
        elif key.endswith('relative_position_index'):
            continue
        elif key.endswith('relative_position_bias_table'):
            if torch.any(value != 0):
                raise ValueError(f'{key} is trained (non-zero): pcae_mm ViTs have no '
                                 'relative position bias table')
        else:
            out[key] = value
    return out


CONVERTERS: Dict[str, Tuple[Callable[[State], State], Callable[[State], State], str]] = {
    # name: (from pcae_mm backbone, back to pcae_mm backbone, wrapping key or '')
    'timm': (to_timm, from_timm, 'model'),
    'mmseg': (to_mmseg_mae, from_mmseg_mae, 'state_dict'),
    'backbone': (lambda s: dict(s), lambda s: dict(s), ''),
}


def convert_checkpoint(src: str, dst: str, layout: str, prefix: str = 'backbone.') -> int:
    """Convert a pcae_mm checkpoint file into ``layout`` and save it.

    Args:
        src (str): pcae_mm checkpoint (pre-training or fine-tuning).
        dst (str): Output file.
        layout (str): 'timm', 'mmseg' or 'backbone'.
        prefix (str): Key prefix of the encoder in ``src``. Defaults to 'backbone.'.

    Returns:
        int: number of tensors written.
    """
    from ..utils.pretrained import read_state_dict
    if layout not in CONVERTERS:
        raise ValueError(f'unknown layout {layout!r}; choose from {sorted(CONVERTERS)}')
    forward, _, wrap = CONVERTERS[layout]
    state = forward(extract_backbone(read_state_dict(src), prefix))
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}
    torch.save({wrap: state} if wrap else state, dst)
    return len(state)


def load_converted(path: str, layout: str, prefix: str = 'backbone.') -> State:
    """Read a file written by :func:`convert_checkpoint` back into pcae_mm names."""
    from ..utils.pretrained import read_state_dict
    if layout not in CONVERTERS:
        raise ValueError(f'unknown layout {layout!r}; choose from {sorted(CONVERTERS)}')
    return add_prefix(CONVERTERS[layout][1](read_state_dict(path)), prefix)
