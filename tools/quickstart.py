"""End-to-end CPU quickstart on generated data: ``make demo`` / ``make
demo-seg`` / ``make demo-cls``; with ``--compare``, the STViT-R-Swin quickstart side by side
with its Swin twin: ``make compare`` / ``make compare-seg``.

Generates the synthetic coloured-shapes set, trains the quickstart config
with ``tools/train.py``, evaluates it with ``tools/test.py`` (both as
streamed subprocesses), draws ground truth | prediction for a few val
images and prints a summary; see :mod:`stvit_mm.apis.quickstart`. A failed
step is named and the exit status is 1. A non-empty ``--work-dir`` is never
written into: the run goes to a fresh ``<work-dir>_<timestamp>``.
``--compare`` trains both models with the same recipe, data, iterations and
seed and prints the mini Table 5 / Table 14; see
:mod:`stvit_mm.apis.compare`.

Examples::

    python tools/quickstart.py det
    python tools/quickstart.py seg
    python tools/quickstart.py cls   # ImageNet-style classifier, top-1
    python tools/quickstart.py det --compare
    python tools/quickstart.py det --max-iters 2 --num-train 8 --num-val 4 \\
        --data-root /tmp/shapes --work-dir /tmp/demo
"""
import argparse
import sys

from stvit_mm.apis.compare import run_compare
from stvit_mm.apis.quickstart import TASKS, QuickstartOptions, run_quickstart
from stvit_mm.errors import exit_on_error


def parse_args(argv=None) -> argparse.Namespace:
    # Options left out take QuickstartOptions' defaults.
    parser = argparse.ArgumentParser(
        description='Train and evaluate a quickstart STViT-R-Swin model on '
        'generated data (no COCO, no GPU needed).',
        argument_default=argparse.SUPPRESS)
    add = parser.add_argument
    add('task', choices=sorted(TASKS),
        help='det: Cascade Mask R-CNN; seg: UperNet; cls: the ImageNet '
        'classifier (mmpretrain)')
    add('--compare', action='store_true',
        help='train the quickstart config and its Swin twin (configs/'
        'quickstart/swin_quickstart_*.py) the same way and print the mini '
        'Table 5 / Table 14 (work dir: work_dirs/compare or '
        'work_dirs/compare_seg)')
    add('--config', help='config (default: the quickstart config of the '
        'task; not with --compare)')
    add('--data-root', help='where the synthetic data is generated/reused '
        '(default: data/synthetic_coco, data/synthetic_ade or '
        'data/synthetic_imagenet)')
    add('--work-dir', help='output dir (default: work_dirs/demo, '
        'work_dirs/demo_seg or work_dirs/demo_cls)')
    add('--max-iters', type=int, help='override train_cfg.max_iters')
    add('--num-train', type=int)
    add('--num-val', type=int)
    add('--size', type=int, help='side of the generated images (default '
        '256; cls: 112)')
    add('--seed', type=int, help='seed of the generated data (with '
        '--compare also of both trainings)')
    add('--num-vis', type=int, help='val images to draw predictions on')
    add('--score-thr', type=float,
        help='score threshold of the drawn detections (default 0.5: the '
        "model's answer rather than every per-class candidate; the metrics "
        'use no such threshold)')
    add('--val-during-train', action='store_true',
        help="keep the config's validation inside train.py (by default "
        'skipped: tools/test.py evaluates the final checkpoint on the same '
        'split right after)')
    add('--threads', type=int,
        help='OMP_NUM_THREADS for train/test (default: 1 when the cores are '
        "already busy at the start, else torch's default)")
    add('--cfg-options', nargs='+', metavar='KEY=VALUE',
        help='extra overrides passed to train.py/test.py')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = vars(parse_args(argv))
    run = run_compare if args.pop('compare', False) else run_quickstart
    with exit_on_error('quickstart.py'):
        run(QuickstartOptions(**args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
