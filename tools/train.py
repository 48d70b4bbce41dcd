"""Train a detector (mmdet) or a segmentor (mmseg) from a config.

The library is chosen by the config's ``default_scope``. Before anything is
built, the data, pretrained weights, checkpoint to resume and work dir are
checked; GPU recipes run on machines without CUDA; checkpoints are written
atomically and resumed safely. See :mod:`stvit_mm.apis.train`.

Examples::

    python tools/train.py configs/cascade_stvit_r_swin_s_3x.py
    tools/dist_train.sh configs/upernet_stvit_r_swin_s_160k_ade20k.py 8
"""
import argparse
import os.path as osp

from stvit_mm.apis import parse_with_common_args, run_kwargs, run_train
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector or segmentor (default_scope mmdet or '
        'mmseg) with an STViT-R-Swin or any other backbone.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', help='enable automatic '
                        'mixed precision (ignored, with a warning, on a '
                        'machine without CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size '
                        '/ auto_scale_lr.base_batch_size)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path '
                        'from the latest checkpoint in the work dir')
    return parse_with_common_args(parser, argv)


def main(argv=None):
    kwargs = run_kwargs(parse_args(argv))
    with exit_on_error(osp.basename(__file__)):
        run_train(**kwargs)


if __name__ == '__main__':
    main()
