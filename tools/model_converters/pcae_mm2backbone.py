"""Extract a pcae_mm checkpoint's encoder as a bare backbone state dict (no prefix).

The output is a plain ``{name: tensor}`` dict in mmpretrain ``VisionTransformer`` names: it
loads with ``VisionTransformer(...).load_state_dict(torch.load(path))`` or through
``init_cfg=dict(type='Pretrained', checkpoint=path)`` (prefix '').

Example::

    python tools/model_converters/pcae_mm2backbone.py work_dirs/pcae/epoch_300.pth backbone.pth
"""
import os.path as osp
import runpy

main = runpy.run_path(osp.join(osp.dirname(osp.abspath(__file__)), 'pcae_mm2timm.py'))['main']

if __name__ == '__main__':
    main('backbone')
