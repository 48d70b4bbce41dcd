"""Convert released STViT-R-Swin checkpoints (ImageNet or COCO) to stvit_mm /
mmdet 3.x layout; see :mod:`stvit_mm.apis.convert_release`.

Usage:
    python tools/model_converters/stvit_r_official_to_mm.py SRC DST \
        [--config configs/cascade_stvit_r_swin_s_3x.py] [--overwrite]
    # the ImageNet release as a whole mmpretrain classifier (tools/test.py):
    python tools/model_converters/stvit_r_official_to_mm.py \
        STViT-R-Swin-S.pth checkpoints/stvit_r_swin_s_in1k_cls.pth \
        --classifier --config configs/imagenet/stvit_r_swin_s_16xb64_in1k.py
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
    parser.add_argument('--classifier', action='store_true',
                        help='ImageNet release: keep the final norm and head '
                        '(an mmpretrain classifier checkpoint for '
                        'configs/imagenet/) instead of the backbone alone')
    args = parser.parse_args(argv)
    with exit_on_error():
        convert_release(args.src, args.dst, args.config, args.overwrite,
                        classifier=args.classifier)


if __name__ == '__main__':
    main()
