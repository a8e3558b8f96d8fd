"""PTR at fine-tuning / inference (PCAE Table 5): counted GMACs and throughput per drop ratio.

Default: the PTR configs ``configs/pcae/benchmarks/vit-base-p16_ptr-drop*.py`` (drop 0 .. 0.4,
two drop points after blocks 1 and 5, keep ``1 - drop`` per stage). ``--ptr-drop-ratios``
instead applies ratios (and ``--ptr-locations``) to a fine-tune config. Prints GMACs next to
the paper's, the relative error, images/s and the speed-up over drop 0; writes JSON + Markdown.

Examples::

    python -m tools.analysis.ptr_flops                       # MACs + inference throughput
    python -m tools.analysis.ptr_flops --macs-only           # deterministic counts only
    python -m tools.analysis.ptr_flops --ptr-drop-ratios 0 0.2 0.4 --ptr-locations 0 4 8

(from the repository root; ``python tools/analysis/ptr_flops.py`` works too).
"""
import argparse
import os.path as osp
import sys

if not __package__:  # run by path: import as `python -m tools.analysis.ptr_flops` (PEP 366)
    sys.path[0] = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the root
    __package__ = 'tools.analysis'

from .benchmark import (add_common_args, add_ptr_args, meta_info,  # noqa: E402
                        run_ptr_section, setup)
from .pcae_bench.report import render, write_outputs  # noqa: E402
from .pcae_bench.targets import check_targets  # noqa: E402
from .pcae_bench.timing import Progress  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--macs-only', action='store_true', help='count MACs, time nothing')
    parser.add_argument('--stem', default='ptr_flops', help='output file name stem')
    add_common_args(parser)
    add_ptr_args(parser, default_batch=8)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = setup(args)
    progress = Progress(not args.no_progress)
    if args.macs_only:
        args.rounds = 1
    result = dict(meta=meta_info(args, device, args.ptr_batch_size))
    result['ptr'], result['ptr_meta'] = run_ptr_section(args, device, progress)
    result['targets'] = [t for t in check_targets([], result['ptr'])
                         if t['target'].startswith('PTR')]
    print(render(result, markdown=False))
    paths = write_outputs(result, args.out_dir, args.stem)
    print(f"wrote {paths['json']} and {paths['markdown']}")
    return result


if __name__ == '__main__':
    main()
