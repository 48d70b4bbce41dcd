"""Export an STViT-R-Swin (or Swin) model from a config to ONNX, check it in
ONNX Runtime against PyTorch, then write it.

``--what model`` (default) exports an mmseg segmentor whole (image ->
class logits at input resolution), an mmpretrain classifier whole (image ->
class logits, dynamic batch) and an mmdet detector's backbone + neck
(image -> feature pyramid); ``--what backbone`` the backbone alone. See
:mod:`stvit_mm.deployment.model_export`.

Examples::

    python tools/deployment/pytorch2onnx.py \\
        configs/upernet_stvit_r_swin_s_160k_ade20k.py iter_160000.pth \\
        --out upernet_stvit_r_swin_s.onnx --shape 512 512
    python tools/deployment/pytorch2onnx.py configs/cascade_stvit_r_swin_s_3x.py \\
        --what backbone --out stvit_r_swin_s.onnx --shape 800 1216
    python tools/deployment/pytorch2onnx.py \\
        configs/imagenet/stvit_r_swin_s_16xb64_in1k.py cls.pth \\
        --out stvit_r_swin_s_cls.onnx
"""
import argparse
import os.path as osp

from stvit_mm.apis.cli import add_cfg_options
from stvit_mm.deployment.model_export import (WHATS, export_config,
                                              format_report)
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a model (or its backbone) to ONNX with dynamic '
        'batch, height and width, and check it in ONNX Runtime.')
    parser.add_argument('config', help='mmdet, mmseg or mmpretrain config '
                        'file')
    parser.add_argument('checkpoint', nargs='?',
                        help='weights of the whole model (random without)')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument('--what', default='model', help='what to export: '
                        f'{" or ".join(WHATS)} (default: model)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size to check (with --static, the only '
                        'size) (default: 224 224 for an mmpretrain '
                        'classifier, else 512 512)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='batch size to check (default: 1)')
    parser.add_argument('--static', action='store_true',
                        help='fixed input size instead of dynamic batch, '
                        'height and width (classifiers: dynamic batch)')
    parser.add_argument('--seg-output', choices=['logits', 'labels'],
                        default='logits', help='segmentors exported whole: '
                        'per-pixel class logits or labels (default: logits)')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        report = export_config(
            args.config, args.out, args.checkpoint, what=args.what,
            shape=(args.batch_size, 3, *(args.shape or (None, None))),
            dynamic=not args.static, seg_output=args.seg_output,
            force=args.force, cfg_options=args.cfg_options)
        print(format_report(report))


if __name__ == '__main__':
    main()
