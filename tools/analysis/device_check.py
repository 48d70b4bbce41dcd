"""Check STViT-R-Swin on an accelerator against the CPU (fp32, fp16, bf16,
training steps). See :mod:`stvit_mm.utils.device_check` for what is checked.

The backbone is a config's ``model.backbone`` (default: STViT-R-Swin-S of
``configs/cascade_stvit_r_swin_s_3x.py``) with random weights moved off their
init. Only stvit_mm and mmcv's Python modules are needed (not mmcv's
compiled ops). Exit status 0 when every check passed, 1 otherwise.

Example (about a minute on a GPU machine with 16 cores, most of it the CPU
reference)::

    python tools/analysis/device_check.py --device cuda --out check.json
"""
import argparse
import json
import os.path as osp
import re
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def size_arg(text: str):
    match = re.fullmatch(r'(\d+)[xX](\d+)', text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(f'expected HxW, got {text!r}')
    return int(match[1]), int(match[2])


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


def load_backbone_cfg(path: str, override: dict) -> dict:
    """``model.backbone`` of a config, as a plain dict, with overrides."""
    from mmengine.config import Config
    if not osp.isfile(path) and osp.isfile(osp.join(REPO, path)):
        path = osp.join(REPO, path)
    cfg = Config.fromfile(path).model.backbone.to_dict()
    if cfg.get('type') != 'STViTRSwin':
        raise ValueError(f'{path}: model.backbone is {cfg.get("type")!r}, '
                         'not STViTRSwin')
    cfg.update(override)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    import stvit_mm  # noqa: F401
    from stvit_mm.utils.device_check import markdown_report, run_device_check
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_backbone_cfg(args.config, json.loads(args.override))
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    results = run_device_check(
        cfg, args.device, args.ref_device, args.sizes, args.batch,
        args.pad_masks, args.dtypes, args.train_dtypes, args.train_size,
        args.train_batch, args.train_steps, args.layer_scale, args.seed)
    results['setting']['config'] = args.config
    print(markdown_report(results), flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    return 0 if results['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
