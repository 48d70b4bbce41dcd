"""Run a detector or segmentor on one image and save the drawn result.

The library is chosen by the config's ``default_scope``:

* ``mmdet``: ``init_detector`` + ``inference_detector``; boxes (and masks,
  for instance segmentation models) with a score of at least
  ``--score-thr`` are drawn by ``DetLocalVisualizer``.
* ``mmseg``: ``init_model`` + ``inference_model``; the predicted label map
  is blended over the image by ``SegLocalVisualizer``.

Class names and palette come from the checkpoint's ``meta.dataset_meta``
(what the mmengine Runner saves), else from the config's test dataset
(e.g. the quickstart configs' shapes classes), else the library's default.

Examples::

    python tools/demo.py demo.jpg configs/cascade_stvit_r_swin_s_3x.py \\
        work_dirs/cascade_stvit_r_swin_s_3x/epoch_36.pth --out-file det.jpg
    python tools/demo.py ade.jpg \\
        configs/upernet_stvit_r_swin_s_160k_ade20k.py iter_160000.pth \\
        --out-file seg.png
"""
import argparse
import os
import os.path as osp
import sys
import time
import warnings
from typing import Dict

SCOPES = ('mmdet', 'mmseg')


class DemoError(Exception):
    """A problem the user has to fix; printed without a traceback."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the predictions of a detector (boxes, masks) or a '
        'segmentor (label map) on one image; the library follows the '
        "config's default_scope (mmdet / mmseg).")
    parser.add_argument('image', help='input image file')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument(
        '--out-file',
        help='where to write the drawn image (default: '
        '<image name>_pred.png in the current directory)')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='detection: draw only instances scoring at least this')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='segmentation: opacity of the drawn label map, 0 to 1')
    return parser.parse_args(argv)


def _is_url(path: str) -> bool:
    return path.startswith(('http://', 'https://', 's3://'))


def check_inputs(args) -> None:
    """Fail early, with the path, on anything missing or unusable."""
    for what, path in (('image', args.image), ('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if what == 'checkpoint' and _is_url(path):
            continue
        if not osp.isfile(path):
            raise DemoError(f'{what} file not found: {path}')
    if not 0 <= args.score_thr <= 1:
        raise DemoError(f'--score-thr must be in [0, 1], got {args.score_thr}')
    if not 0 <= args.opacity <= 1:
        raise DemoError(f'--opacity must be in [0, 1], got {args.opacity}')
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise DemoError(f'--device {args.device}: no CUDA device is '
                            'available; use --device cpu')


def read_image(path: str):
    """The image as RGB, or a DemoError if it cannot be decoded."""
    import mmcv
    try:
        image = mmcv.imread(path, channel_order='rgb')
    except Exception as e:  # mmcv raises various errors for non-images
        raise DemoError(f'cannot read image {path}: {e}') from e
    if image is None:
        raise DemoError(f'cannot read image {path}: not an image file')
    return image


def load_config(path: str):
    """The config, with its default_scope checked."""
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
    except Exception as e:
        raise DemoError(f'cannot load config {path}: {e}') from e
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise DemoError(f'{path}: default_scope is {scope!r}; the demo '
                        'serves mmdet and mmseg configs only')
    return cfg


def config_dataset_meta(cfg) -> Dict:
    """Class names and palette declared by the config's test dataset
    (built lazily: no annotation file is read)."""
    from mmengine.registry import DATASETS, DefaultScope
    dataset_cfg = cfg.get('test_dataloader', {}).get('dataset')
    if not dataset_cfg:
        return {}
    dataset_cfg = dict(dataset_cfg, lazy_init=True)
    try:
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            meta = DATASETS.build(dataset_cfg).metainfo
    except Exception:  # a dataset that needs its files even when lazy
        return {}
    return {k: v for k, v in meta.items() if k in ('classes', 'palette')}


def load_weights(model, checkpoint: str, cfg, scope: str) -> None:
    """Load the checkpoint into the model and set ``model.dataset_meta``:
    checkpoint meta > config test dataset > library default."""
    from mmengine.runner import load_checkpoint
    try:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
    except Exception as e:
        raise DemoError(f'cannot load checkpoint {checkpoint}: {e}') from e
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    dataset_meta = {k.lower(): v
                    for k, v in meta.get('dataset_meta', {}).items()}
    if 'classes' not in dataset_meta:
        dataset_meta.update(config_dataset_meta(cfg))
    if 'classes' not in dataset_meta:
        dataset_meta.update(default_dataset_meta(model, scope))
    model.dataset_meta = dataset_meta


def default_dataset_meta(model, scope: str) -> Dict:
    """COCO for detectors; for segmentors the first mmseg dataset with as
    many classes as the decode head (mmseg's own fallback), else generic
    names."""
    if scope == 'mmdet':
        from mmdet.evaluation import get_classes
        return {'classes': get_classes('coco')}
    from mmseg.utils import dataset_aliases, get_classes, get_palette
    num_classes = model.decode_head.num_classes
    for name in dataset_aliases:
        if len(get_classes(name)) == num_classes:
            return {'classes': get_classes(name),
                    'palette': get_palette(name)}
    return {'classes': [f'class {i}' for i in range(num_classes)]}


def init(cfg, checkpoint: str, device: str):
    """Build the model with the library's init function (no weights: they
    are loaded by :func:`load_weights`, which also sets class names)."""
    # init_detector resets the warning filters itself, so its "checkpoint
    # is None, use COCO classes" (not true here: load_weights sets the
    # classes) is dropped from the recorded warnings instead.
    with warnings.catch_warnings(record=True) as caught:
        if cfg.default_scope == 'mmdet':
            from mmdet.apis import init_detector
            model = init_detector(cfg, None, device='cpu')
        else:
            from mmengine.model import revert_sync_batchnorm
            from mmseg.apis import init_model
            model = revert_sync_batchnorm(init_model(cfg, None,
                                                     device='cpu'))
    for w in caught:
        if 'checkpoint is None' not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename,
                                   w.lineno)
    load_weights(model, checkpoint, cfg, cfg.default_scope)
    return model.to(device)


def draw_detection(model, image, image_path: str, out_file: str,
                   score_thr: float) -> int:
    """Detect and draw; returns the number of drawn instances."""
    from mmdet.apis import inference_detector
    from mmdet.visualization import DetLocalVisualizer
    result = inference_detector(model, image_path)
    visualizer = DetLocalVisualizer(name=f'stvit_demo_det_{time.time()}')
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample(
        osp.basename(image_path), image, data_sample=result, draw_gt=False,
        pred_score_thr=score_thr, out_file=out_file)
    return int((result.pred_instances.scores >= score_thr).sum())


def draw_segmentation(model, image, image_path: str, out_file: str,
                      opacity: float) -> int:
    """Segment and draw; returns the number of classes present."""
    from mmseg.apis import inference_model
    from mmseg.visualization import SegLocalVisualizer
    result = inference_model(model, image_path)
    visualizer = SegLocalVisualizer(name=f'stvit_demo_seg_{time.time()}',
                                    alpha=opacity)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample(
        osp.basename(image_path), image, data_sample=result, draw_gt=False,
        out_file=out_file)
    return len(result.pred_sem_seg.data.unique())


def default_out_file(image: str) -> str:
    return osp.splitext(osp.basename(image))[0] + '_pred.png'


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_inputs(args)
        # Registers STViTRSwin and makes checkpoint loading safe on
        # torch >= 2.6, before any config is loaded or model built.
        import stvit_mm  # noqa: F401
        cfg = load_config(args.config)
        image = read_image(args.image)
        out_file = args.out_file or default_out_file(args.image)
        out_dir = osp.dirname(osp.abspath(out_file))
        os.makedirs(out_dir, exist_ok=True)
        model = init(cfg, args.checkpoint, args.device)
        if cfg.default_scope == 'mmdet':
            n = draw_detection(model, image, args.image, out_file,
                               args.score_thr)
            what = f'{n} instances with score >= {args.score_thr}'
        else:
            n = draw_segmentation(model, image, args.image, out_file,
                                  args.opacity)
            what = f'{n} classes present'
    except DemoError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{what}; result written to {out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
