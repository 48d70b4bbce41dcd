"""Convert released STViT-R-Swin checkpoints (ImageNet or COCO) to stvit_mm /
mmdet 3.x layout; see :mod:`stvit_mm.apis.convert_release`.

Usage:
    python tools/model_converters/stvit_r_official_to_mm.py SRC DST \
        [--config configs/cascade_stvit_r_swin_s_3x.py] [--overwrite]
"""
import argparse

from stvit_mm.apis import convert_release
from stvit_mm.errors import exit_on_error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted weights')
    parser.add_argument('--config', help='check the result against the model '
                        'this config builds (e.g. '
                        'configs/cascade_stvit_r_swin_s_3x.py)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing DST')
    args = parser.parse_args(argv)
    with exit_on_error():
        convert_release(args.src, args.dst, args.config, args.overwrite)


if __name__ == '__main__':
    main()
