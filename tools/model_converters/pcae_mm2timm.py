"""Convert a pcae_mm checkpoint's encoder to the timm / facebookresearch-MAE layout.

The output (``{'model': state_dict}`` with ``blocks.{i}.attn.qkv`` ... names, like MAE's released
``mae_pretrain_vit_base.pth``) loads into timm's ``VisionTransformer``, facebookresearch/mae's
fine-tuning code, detectron2 ViTDet and mmdet's ``projects/ViTDet``.

Example::

    python tools/model_converters/pcae_mm2timm.py work_dirs/pcae/epoch_300.pth pcae_vit-b_timm.pth
"""
import argparse

from pcae_mm.downstream.converters import convert_checkpoint


def parse_args(layout: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=f'Convert a pcae_mm checkpoint to the {layout} layout')
    parser.add_argument('src', help='pcae_mm checkpoint (pre-training or fine-tuning)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--prefix', default='backbone.',
                        help="key prefix of the encoder in src ('teacher.module.' exports the "
                             "EMA teacher of PCAE / SdAE). Defaults to 'backbone.'")
    return parser.parse_args(argv)


def main(layout: str = 'timm', argv=None) -> None:
    args = parse_args(layout, argv)
    n = convert_checkpoint(args.src, args.dst, layout, args.prefix)
    print(f'wrote {n} tensors ({layout} layout) to {args.dst}')


if __name__ == '__main__':
    main('timm')
