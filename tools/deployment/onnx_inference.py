"""Run an exported model (``pytorch2onnx.py``) in ONNX Runtime: on one
image, writing the picture (a segmentor's label map, or a backbone's /
feature pyramid's activations plus an ``.npz`` of the features) or printing
a classifier's top 5 classes, or with
``--eval`` over the config's validation set (segmentors), beside PyTorch
when the checkpoint is given.

Examples::

    python tools/deployment/onnx_inference.py \\
        configs/upernet_stvit_r_swin_s_160k_ade20k.py upernet.onnx \\
        demo.jpg --out demo_onnx.png
    python tools/deployment/onnx_inference.py \\
        configs/upernet_stvit_r_swin_s_160k_ade20k.py upernet.onnx \\
        --eval --checkpoint iter_160000.pth
    python tools/deployment/onnx_inference.py \\
        configs/imagenet/stvit_r_swin_s_16xb64_in1k.py \\
        stvit_r_swin_s_cls.onnx demo.jpg
"""
import argparse
import json
import os.path as osp

from stvit_mm.apis.cli import add_cfg_options
from stvit_mm.deployment import evaluate_segmentor_onnx, onnx_image_demo
from stvit_mm.errors import ConfigError, exit_on_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run an exported ONNX model in ONNX Runtime.')
    parser.add_argument('config', help='the config it was exported from')
    parser.add_argument('onnx', help='the .onnx file')
    parser.add_argument('image', nargs='?', help='an image to run it on')
    parser.add_argument('--out', help='with an image: the picture to write '
                        '(default: <image name>_onnx.png; classifiers print '
                        'their top 5 classes instead)')
    parser.add_argument('--force', action='store_true',
                        help='replace existing output files')
    parser.add_argument('--eval', action='store_true', help='segmentors: '
                        'evaluate over the config\'s validation set')
    parser.add_argument('--checkpoint', help='with --eval: the weights it '
                        'was exported from, to compare with PyTorch')
    parser.add_argument('--threads', type=int,
                        help='ONNX Runtime threads (default: all cores)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the drawn label map')
    parser.add_argument('--ground-truth', metavar='PNG',
                        help='segmentors: the image\'s label map, drawn '
                        'beside the prediction; the pixels it ignores (255 '
                        'after reduce_zero_label) are marked ignored in both')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        if args.eval:
            print(json.dumps(evaluate_segmentor_onnx(
                args.config, args.onnx, args.checkpoint, args.threads,
                args.cfg_options), indent=2))
        elif args.image:
            out = args.out or (osp.splitext(osp.basename(args.image))[0]
                               + '_onnx.png')
            print(onnx_image_demo(args.config, args.onnx, args.image, out,
                                  args.force, args.threads, args.opacity,
                                  args.ground_truth))
        else:
            raise ConfigError('give an image to run the model on, or --eval')


if __name__ == '__main__':
    main()
