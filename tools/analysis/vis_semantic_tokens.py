"""Draw where STViT-R-Swin's semantic tokens look, for one image.

One figure: the input as the model sees it with the stage-3 window grid;
for chosen windows, each semantic token's generation attention over its
image-token neighbourhood (both steps); and what the recovery reads back
for a few image tokens. Works for detection, segmentation and
classification configs, with a checkpoint or with random weights. See
:mod:`stvit_mm.analysis.vis_tokens` and docs/visualization.md.

Examples::

    python tools/analysis/vis_semantic_tokens.py \\
        configs/quickstart/stvit_r_swin_quickstart_coco.py \\
        work_dirs/demo/iter_500.pth data/synthetic_coco/val/000000.png \\
        --out /tmp/tokens.png
    python tools/analysis/vis_semantic_tokens.py \\
        configs/examples/mask-rcnn_stvit-r-swin-t_fpn_1x_coco.py demo.jpg \\
        --out /tmp/random.png --windows 2,3 1,1
"""
import argparse
import os.path as osp
import sys

from stvit_mm.analysis.vis_tokens import vis_semantic_tokens
from stvit_mm.apis.cli import add_cfg_options
from stvit_mm.errors import exit_on_error


def window(text: str):
    try:
        row, col = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r}: give a window as ROW,COL, e.g. 1,2') from None
    return row, col


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Draw STViT-R-Swin's semantic tokens for one image: "
        'generation attention per window and step, and recovery.')
    parser.add_argument('config', help='config with an STViT-R-Swin backbone')
    parser.add_argument('paths', nargs='+', metavar='[CHECKPOINT] IMAGE',
                        help='optional checkpoint (without it: random '
                        'weights), then the image')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument('--unit', type=int, default=0,
                        help='dumbbell unit of stage 3, from 0 (default 0)')
    parser.add_argument('--windows', type=window, nargs='+',
                        metavar='ROW,COL',
                        help='stage-3 windows to detail (default: the '
                        'centre window and the most textured other one)')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error('give at most CHECKPOINT and IMAGE after CONFIG')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = args.paths[0] if len(args.paths) == 2 else None
    with exit_on_error(osp.basename(__file__)):
        print(vis_semantic_tokens(args.config, checkpoint, args.paths[-1],
                                  args.out, args.unit, args.windows,
                                  args.force, args.cfg_options))
    return 0


if __name__ == '__main__':
    sys.exit(main())
