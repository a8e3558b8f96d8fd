"""Convert a timm / facebookresearch-MAE ViT checkpoint into pcae_mm's layout.

The output (``{'state_dict': {'backbone.' + name: tensor}}``) loads into every pcae_mm
downstream config (fine-tune, linear probe, Mask R-CNN, UperNet) like a pcae_mm pre-training
checkpoint, e.g. to compare against MAE's released ``mae_pretrain_vit_base.pth``. MAE decoder
tensors are dropped.

Example::

    python tools/model_converters/timm2pcae_mm.py mae_pretrain_vit_base.pth mae_vit-b_pcae_mm.pth
"""
import argparse

import torch

from pcae_mm.downstream.converters import load_converted


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='timm / MAE checkpoint -> pcae_mm layout')
    parser.add_argument('src', help='timm or facebookresearch-MAE checkpoint')
    parser.add_argument('dst', help='output file')
    args = parser.parse_args(argv)
    state = load_converted(args.src, 'timm')
    torch.save({'state_dict': state}, args.dst)
    print(f'wrote {len(state)} tensors (pcae_mm layout, prefix backbone.) to {args.dst}')


if __name__ == '__main__':
    main()
