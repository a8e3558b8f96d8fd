"""Plot the loss (and, when logged, kNN top-1 accuracy) of an mmengine run against iteration.

    python tools/analysis/plot_curves.py WORK_DIR_OR_SCALARS_JSON [--out-file curves.png]
        [--title TEXT] [--keys accuracy/top1 ...]

WORK_DIR_OR_SCALARS_JSON is a ``vis_data/scalars.json`` written by mmengine's LocalVisBackend,
or a work dir (its newest one is used). Loss and its parts (``loss_*``) go on the left axis,
kNN top-1 accuracy (``knn/<net>_top1`` from KNNEvalHook, step 0 = random init) and any
``--keys`` on the right axis (%).
"""
import argparse
import os.path as osp

from pcae_mm.visualization.curves import find_scalars, plot_curves


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='scalars.json, or an mmengine work dir holding one')
    parser.add_argument('--out-file', help='PNG to write (default: curves.png next to the '
                        'scalars.json)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--keys', nargs='*', default=[],
                        help='more accuracy-like scalar keys for the right axis')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    scalars = find_scalars(args.source)
    out = args.out_file or osp.join(osp.dirname(scalars), 'curves.png')
    plot_curves(scalars, out, title=args.title, extra_keys=args.keys)
    print(f'wrote {out}')
    return out


if __name__ == '__main__':
    main()
