"""Check STViT-R-Swin on an accelerator against the CPU (fp32, fp16, bf16,
training steps). See :mod:`stvit_mm.analysis.device_check` for what is
checked.

The backbone is a config's ``model.backbone`` (default: STViT-R-Swin-S of
``configs/cascade_stvit_r_swin_s_3x.py``) with random weights moved off their
init. Only stvit_mm and mmcv's Python modules are needed (not mmcv's
compiled ops). Exit status 0 when every check passed, 1 otherwise.

Example (about a minute on a GPU machine with 16 cores, most of it the CPU
reference)::

    python tools/analysis/device_check.py --device cuda --out check.json
"""
import argparse
import os.path as osp
import sys

import torch

from stvit_mm.analysis import check_config, size_arg
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default='configs/cascade_stvit_r_swin_s_3x.py',
                   help='config whose model.backbone is checked (relative '
                   'paths may be relative to the repository root)')
    p.add_argument('--override', default='{}', metavar='JSON',
                   help='backbone arguments to override, e.g. '
                   '\'{"embed_dims": 16}\'')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', help='device under test (default: cuda if '
                   'available, else cpu)')
    p.add_argument('--ref-device', default='cpu')
    p.add_argument('--sizes', nargs='+', type=size_arg,
                   default=[(800, 1216), (512, 512)], metavar='HxW')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--pad-masks', nargs='+', choices=['official', 'exact'],
                   default=['official', 'exact'])
    p.add_argument('--dtypes', nargs='*', choices=['fp16', 'bf16'],
                   default=['fp16', 'bf16'], help='autocast precisions')
    p.add_argument('--train-dtypes', nargs='*',
                   choices=['fp32', 'fp16', 'bf16'], default=['bf16', 'fp16'],
                   help='precisions of the training-step check (none: skip)')
    p.add_argument('--train-size', type=size_arg, metavar='HxW',
                   help='default: the first of --sizes')
    p.add_argument('--train-batch', type=int, default=2)
    p.add_argument('--train-steps', type=int, default=3)
    p.add_argument('--layer-scale', type=float, default=0.5)
    p.add_argument('--threads', type=int, help='CPU threads of the '
                   'reference (default: torch\'s default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='also write the results as JSON here')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        results = check_config(**vars(args))
    sys.exit(0 if results['passed'] else 1)


if __name__ == '__main__':
    main()
