"""Run a detector or segmentor on one image and save the drawn result.

The library is chosen by the config's ``default_scope``: mmdet (boxes and
masks scoring at least ``--score-thr``) or mmseg (the label map blended
over the image); see :mod:`stvit_mm.apis.inference`. Class names and
palette come from the checkpoint's ``meta.dataset_meta`` (what the mmengine
Runner saves), else from the config's test dataset, else the library's
default.

Examples::

    python tools/image_demo.py demo.jpg configs/cascade_stvit_r_swin_s_3x.py \\
        work_dirs/cascade_stvit_r_swin_s_3x/epoch_36.pth --out-file det.jpg
    python tools/image_demo.py ade.jpg \\
        configs/upernet_stvit_r_swin_s_160k_ade20k.py iter_160000.pth \\
        --out-file seg.png
"""
import argparse
import sys

from stvit_mm.apis.inference import image_demo
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the predictions of a detector (boxes, masks) or a '
        'segmentor (label map) on one image; the library follows the '
        "config's default_scope (mmdet / mmseg).")
    parser.add_argument('image', help='input image file')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--out-file', help='where to write the drawn image '
                        '(default: <image name>_pred.png in the current '
                        'directory)')
    parser.add_argument('--device', default='cpu',
                        help='device, e.g. cpu or cuda:0')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: draw only instances scoring at '
                        'least this')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='segmentation: opacity of the drawn label map, '
                        '0 to 1')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with exit_on_error('image_demo.py'):
        print(image_demo(args.image, args.config, args.checkpoint,
                         args.out_file, args.device, args.score_thr,
                         args.opacity))
    return 0


if __name__ == '__main__':
    sys.exit(main())
