"""Convert a pcae_mm checkpoint's encoder to mmseg's ``MAE`` backbone layout.

The output (``{'state_dict': ...}``, mmpretrain names without prefix, unit ``gamma_1/gamma_2``
layer scales) loads into ``mmseg.models.backbones.MAE`` through its
``init_cfg=dict(type='Pretrained', checkpoint=...)`` (which ignores ``prefix`` and loads
non-strictly: without this conversion it would load nothing). pcae_mm's own UperNet configs
(``configs/benchmarks/upernet``) read pcae_mm checkpoints directly and need no conversion.

Example::

    python tools/model_converters/pcae_mm2mmseg.py work_dirs/pcae/epoch_300.pth pcae_vit-b_mmseg.pth
"""
import os.path as osp
import runpy

main = runpy.run_path(osp.join(osp.dirname(osp.abspath(__file__)), 'pcae_mm2timm.py'))['main']

if __name__ == '__main__':
    main('mmseg')
