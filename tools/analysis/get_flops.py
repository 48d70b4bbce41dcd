"""FLOPs and parameters of STViT-R-Swin against Swin, measured.

By default the paper's FLOPs table (Table 5: COCO 1280x800, Table 14:
ADE20K 512x512) with our count beside the paper's figure; ``--config``
counts any config instead, ``--whole-model`` adds the whole detector /
segmentor / classifier at inference. See :mod:`stvit_mm.analysis.flops`.

Examples::

    python tools/analysis/get_flops.py
    python tools/analysis/get_flops.py --whole-model
    python tools/analysis/get_flops.py --shape 1024 1024 --models S
    python tools/analysis/get_flops.py --config configs/examples/\\
mask-rcnn_stvit-r-swin-t_fpn_1x_coco.py --whole-model
"""
import argparse
import os.path as osp

from stvit_mm.analysis import (PAIR_CONFIGS, FlopsSettings, flops_report,
                               parse_settings)
from stvit_mm.errors import exit_on_error


def parse_args(argv=None) -> FlopsSettings:
    parser = argparse.ArgumentParser(
        argument_default=argparse.SUPPRESS,  # defaults: FlopsSettings
        description='Backbone (and whole-model) GFLOPs and parameters of '
        'STViT-R-Swin vs Swin, measured with count_macs, beside the paper '
        '(Table 5: COCO 1280x800, Table 14: ADE20K 512x512).')
    parser.add_argument(
        '--shape', dest='shapes', type=int, nargs=2, action='append',
        metavar=('H', 'W'),
        help='add an input size (repeatable); paper-table rows at custom '
        'sizes use the COCO configs. With --config: the sizes to count at')
    parser.add_argument(
        '--no-paper-shapes', action='store_true',
        help='leave out the paper sizes (COCO 800x1280, ADE20K 512x512); '
        'only the --shape sizes are counted')
    parser.add_argument(
        '--models', nargs='+', choices=sorted(PAIR_CONFIGS),
        help='backbone sizes of the paper table (default: S B)')
    parser.add_argument(
        '--config', dest='configs', action='append', metavar='CONFIG',
        help='count this config\'s backbone instead of the paper table '
        '(repeatable); sizes from --shape, else 800x1280 (mmdet) / 512x512 '
        '(mmseg)')
    parser.add_argument(
        '--whole-model', action='store_true',
        help='also count the whole detector/segmentor/classifier at '
        'inference (see the notes printed under the table)')
    return parse_settings(parser, FlopsSettings, argv)


def main(argv=None) -> None:
    settings = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        print(flops_report(settings), end='')


if __name__ == '__main__':
    main()
