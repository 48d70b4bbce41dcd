"""Evaluate a checkpoint of a detector (mmdet) or a segmentor (mmseg).

The library is chosen by the config's ``default_scope``: COCO bbox/segm AP
for the detection configs, mIoU for the segmentation ones. The checkpoint
and the test data are checked before anything is built, and a checkpoint
that does not fit the model is refused. See :mod:`stvit_mm.apis.test`.

Examples::

    python tools/test.py configs/cascade_stvit_r_swin_s_3x.py ckpt.pth
    python tools/test.py configs/upernet_stvit_r_swin_s_160k_ade20k.py \\
        ckpt.pth --tta   # multi-scale + flip, the paper's ADE20K protocol
"""
import argparse
import os.path as osp

from stvit_mm.apis import parse_with_common_args, run_kwargs, run_test
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector or segmentor '
        '(default_scope mmdet or mmseg).')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir for logs and the json '
                        'file of evaluation metrics (default: '
                        'work_dirs/<config name>)')
    parser.add_argument('--out', type=str, help='detection: dump the '
                        'predictions to this .pkl file; segmentation: write '
                        'the predicted label maps (png) into this directory')
    parser.add_argument('--show-dir', help='paint the predictions on every '
                        'test image and save them in this directory '
                        '(relative paths are relative to the current '
                        'directory)')
    parser.add_argument('--tta', action='store_true', help='test-time '
                        "augmentation: the config's tta_model/tta_pipeline "
                        '(segmentation: multi-scale 0.5-1.75 + flip); '
                        'detection configs without them get horizontal flip '
                        '(boxes only: mmdet cannot merge instance masks)')
    return parse_with_common_args(parser, argv)


def main(argv=None):
    kwargs = run_kwargs(parse_args(argv))
    with exit_on_error(osp.basename(__file__)):
        run_test(**kwargs)


if __name__ == '__main__':
    main()
