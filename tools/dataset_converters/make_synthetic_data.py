"""Generate the synthetic coloured-shapes datasets used by the CPU demo.

Examples::

    python tools/dataset_converters/make_synthetic_data.py coco \
        --out data/synthetic_coco
    python tools/dataset_converters/make_synthetic_data.py ade \
        --out data/synthetic_ade --num-train 300 --num-val 50 --size 256 \
        --seed 0
    python tools/dataset_converters/make_synthetic_data.py imagenet \
        --out data/synthetic_imagenet --size 224

The same arguments always give byte-identical files. A directory that already
holds a complete set made with the same arguments is left as it is; a
non-empty directory this tool did not write is refused.
"""
import argparse
import time

from stvit_mm.datasets.synthetic import (ADE_METAINFO, COCO_METAINFO,
                                         IMAGENET_METAINFO, KINDS,
                                         generate_synthetic_dataset)
from stvit_mm.errors import exit_on_error


def parse_args(argv=None):
    """Parse command line arguments.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Generate a synthetic shapes dataset (COCO instance '
        'segmentation, ADE20K-style semantic segmentation or ImageNet-style '
        'classification).')
    parser.add_argument('kind', choices=KINDS, help='dataset layout')
    parser.add_argument('--out', required=True, help='target directory')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, default=256,
                        help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def print_progress(split, done, total):
    """Print a split's progress every 10% rather than once per image."""
    if done == total or done % max(total // 10, 1) == 0:
        print(f'  {split}: {done}/{total}', flush=True)


def make_synthetic_data(args):
    """Generate (or keep) the dataset ``args`` describe and say which.

    Args:
        args (argparse.Namespace): As returned by :func:`parse_args`.

    Raises:
        SyntheticDataError: Impossible sizes or counts.
        FileExistsError: ``--out`` holds files this tool did not write.
    """
    start = time.time()
    generated = generate_synthetic_dataset(
        args.kind, args.out, num_train=args.num_train, num_val=args.num_val,
        size=args.size, seed=args.seed, progress=print_progress)
    if generated:
        print(f'Generated the {args.kind} set in {args.out} '
              f'({time.time() - start:.1f} s).')
    else:
        print(f'{args.out} already holds this {args.kind} set; kept it.')
    metainfo = dict(coco=COCO_METAINFO, ade=ADE_METAINFO,
                    imagenet=IMAGENET_METAINFO)[args.kind]
    print(f'metainfo for a config: {metainfo}')


def main(argv=None):
    """Entry point: ``<prog>: error: <message>`` and exit status 1 for
    impossible arguments or a directory it may not write into."""
    args = parse_args(argv)
    with exit_on_error():
        make_synthetic_data(args)


if __name__ == '__main__':
    main()
