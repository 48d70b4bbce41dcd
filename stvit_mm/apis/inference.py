"""A model from a config and a checkpoint, its prediction on an image, and
the prediction drawn, next to the ground truth when there is one.

The one implementation behind ``tools/image_demo.py`` (one image, the
prediction only) and the quickstart's pictures (``tools/quickstart.py``:
val images, ground truth | prediction, :mod:`.val_pictures`). The library follows the config's
``default_scope``:

* ``mmdet``: ``init_detector`` + ``inference_detector``; boxes (and masks,
  for instance segmentation models) scoring at least ``score_thr`` are
  drawn by ``DetLocalVisualizer``.
* ``mmseg``: ``init_model`` + ``inference_model``; the predicted label map
  is blended over the image by ``SegLocalVisualizer``.
"""
import itertools
import os
import os.path as osp
import re
import time
import warnings
from typing import Dict, Optional, Union

import numpy as np
import torch
from mmengine.config import Config

from ..errors import ConfigError, InputError
from ..utils import CheckpointError, check_state_dict_fits
from .config import get_scope, load_config

__all__ = [
    'init_model', 'load_weights', 'load_fitting_weights', 'read_image',
    'build_visualizer', 'make_visualizer', 'config_dataset_meta',
    'draw_prediction', 'image_demo'
]

# Visualizers are named instances (mmengine ManagerMixin): names must differ.
_visualizer_ids = itertools.count()


def _is_url(path: str) -> bool:
    return path.startswith(('http://', 'https://', 's3://'))


def check_demo_inputs(image: str, config: str, checkpoint: str,
                      score_thr: float, opacity: float, device: str) -> None:
    """Fail early, with the path, on anything missing or unusable.

    Raises:
        ConfigError: Naming the missing file or the bad setting.
    """
    for what, path in (('image', image), ('config', config),
                       ('checkpoint', checkpoint)):
        if what == 'checkpoint' and _is_url(path):
            continue
        if not osp.isfile(path):
            raise ConfigError(f'{what} file not found: {path}')
    if not 0 <= score_thr <= 1:
        raise ConfigError(f'--score-thr must be in [0, 1], got {score_thr}')
    if not 0 <= opacity <= 1:
        raise ConfigError(f'--opacity must be in [0, 1], got {opacity}')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ConfigError(f'--device {device}: no CUDA device is '
                          'available; use --device cpu')


def read_image(path: str) -> np.ndarray:
    """The image as an RGB array of shape (H, W, 3), dtype uint8.

    Raises:
        InputError: If it cannot be decoded.
    """
    import mmcv
    try:
        image = mmcv.imread(path, channel_order='rgb')
    except Exception as e:  # mmcv raises various errors for non-images
        import cv2
        why = ('not an image file OpenCV can decode' if isinstance(
            e, cv2.error) else ' '.join(str(e).split()))  # one line
        raise InputError(f'cannot read image {path}: {why}') from e
    if image is None:
        raise InputError(f'cannot read image {path}: not an image file')
    return image


def config_dataset_meta(cfg: Config) -> Dict:
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


def default_dataset_meta(model: torch.nn.Module, scope: str) -> Dict:
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


def load_fitting_weights(model: torch.nn.Module, checkpoint: str) -> Dict:
    """Load a checkpoint into ``model`` if it fits exactly; return it.

    Raises:
        CheckpointError: As :func:`load_weights`.
    """
    from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
    try:
        ckpt = CheckpointLoader.load_checkpoint(checkpoint,
                                                map_location='cpu')
    except Exception as e:
        raise CheckpointError(
            f'cannot load checkpoint {checkpoint}: {e}') from e
    check_state_dict_fits(model, ckpt, checkpoint)
    state_dict = {  # as Runner.load_checkpoint: no DDP prefix
        re.sub(r'^module\.', '', k): v
        for k, v in ckpt.get('state_dict', ckpt).items()
    }
    load_state_dict(model, state_dict, strict=True)
    return ckpt


def load_weights(model: torch.nn.Module, checkpoint: str,
                 cfg: Config) -> None:
    """Load a checkpoint that fits the model exactly and set
    ``model.dataset_meta``: checkpoint meta > config test dataset >
    library default.

    Raises:
        CheckpointError: If the file cannot be loaded, or
            (``CheckpointMismatchError``) its weights do not fit the model.
    """
    meta = load_fitting_weights(model, checkpoint).get('meta', {})
    dataset_meta = {k.lower(): v
                    for k, v in meta.get('dataset_meta', {}).items()}
    if 'classes' not in dataset_meta:
        dataset_meta.update(config_dataset_meta(cfg))
    if 'classes' not in dataset_meta:
        dataset_meta.update(default_dataset_meta(model, cfg.default_scope))
    model.dataset_meta = dataset_meta


def init_model(config: Union[str, Config], checkpoint: str,
               device: str = 'cpu',
               cfg_options: Optional[Dict] = None) -> torch.nn.Module:
    """Build a detector or segmentor in eval mode and load its weights.

    The model is built by the library's own init function (with no
    weights), then the checkpoint is loaded by :func:`load_weights`, which
    refuses weights that do not fit and sets the class names.

    Args:
        config (str | Config): Config file or loaded config.
        checkpoint (str): Checkpoint path or URL.
        device (str): Where the model goes, e.g. ``'cpu'``, ``'cuda:0'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        torch.nn.Module: The model, with ``cfg`` and ``dataset_meta`` set.

    Raises:
        ConfigError: If the config cannot be loaded.
        CheckpointError: If the checkpoint cannot be loaded or does not fit.
    """
    if isinstance(config, Config):
        cfg = config
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    else:
        cfg = load_config(config, cfg_options)
    scope = get_scope(cfg)
    # init_detector resets the warning filters itself, so its "checkpoint
    # is None, use COCO classes" (not true here: load_weights sets the
    # classes) is dropped from the recorded warnings instead.
    with warnings.catch_warnings(record=True) as caught:
        if scope == 'mmdet':
            from mmdet.apis import init_detector
            model = init_detector(cfg, None, device='cpu')
        else:
            from mmengine.model import revert_sync_batchnorm
            from mmseg.apis import init_model as init_segmentor
            model = revert_sync_batchnorm(
                init_segmentor(cfg, None, device='cpu'))
    for w in caught:
        if 'checkpoint is None' not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename,
                                   w.lineno)
    load_weights(model, checkpoint, cfg)
    return model.to(device)


def build_visualizer(model: torch.nn.Module, opacity: float = 0.5):
    """The library's local visualizer, with the model's class names.

    Args:
        model (torch.nn.Module): From :func:`init_model`.
        opacity (float): Segmentation: opacity of the label map, 0 to 1.

    Returns:
        DetLocalVisualizer | SegLocalVisualizer: A new, named instance.
    """
    return make_visualizer(model.cfg.default_scope, model.dataset_meta,
                           opacity)


def make_visualizer(scope: str, dataset_meta: Dict, opacity: float = 0.5):
    """The library's local visualizer for ``scope`` ('mmdet' or 'mmseg')
    with the given class names (and palette); see :func:`build_visualizer`.
    """
    name = f'stvit_demo_{scope}_{time.time()}_{next(_visualizer_ids)}'
    if scope == 'mmdet':
        from mmdet.visualization import DetLocalVisualizer
        visualizer = DetLocalVisualizer(name=name)
    else:
        from mmseg.visualization import SegLocalVisualizer
        visualizer = SegLocalVisualizer(name=name, alpha=opacity)
    visualizer.dataset_meta = dataset_meta
    return visualizer


def draw_prediction(model: torch.nn.Module, visualizer, image_path: str,
                    out_file: str, gt=None, score_thr: float = 0.3,
                    image: Optional[np.ndarray] = None):
    """Predict on one image and draw the result into ``out_file``.

    Args:
        model (torch.nn.Module): From :func:`init_model`.
        visualizer: From :func:`build_visualizer` for this model.
        image_path (str): The image file the model reads.
        out_file (str): The drawn picture: the prediction (H, W, 3), or
            with ``gt`` ground truth | prediction side by side (H, 2W, 3).
        gt (InstanceData | PixelData, optional): Ground truth to draw on
            the left: instances (``bboxes`` (N, 4) xyxy, ``labels`` (N,),
            ``masks``) for a detector, a label map (``data`` (1, H, W)) for
            a segmentor.
        score_thr (float): Detection: instances scoring less are not drawn.
        image (np.ndarray, optional): The image as RGB (H, W, 3); read from
            ``image_path`` if None.

    Returns:
        DetDataSample | SegDataSample: The prediction.
    """
    if image is None:
        image = read_image(image_path)
    if model.cfg.default_scope == 'mmdet':
        from mmdet.apis import inference_detector
        result = inference_detector(model, image_path)
        if gt is not None:
            result.gt_instances = gt
        kwargs = dict(pred_score_thr=score_thr)
    else:
        from mmseg.apis import inference_model
        result = inference_model(model, image_path)
        if gt is not None:
            result.gt_sem_seg = gt
        kwargs = {}
    visualizer.add_datasample(
        osp.basename(image_path), image, data_sample=result,
        draw_gt=gt is not None, draw_pred=True, out_file=out_file, **kwargs)
    return result


def image_demo(image: str, config: str, checkpoint: str,
               out_file: Optional[str] = None, device: str = 'cpu',
               score_thr: float = 0.3, opacity: float = 0.5) -> str:
    """Run a detector or segmentor on one image and save the drawing.

    Args:
        image (str): The image file.
        config (str): The model config (mmdet or mmseg).
        checkpoint (str): Checkpoint path or URL.
        out_file (str, optional): The drawn image; by default
            ``<image name>_pred.png`` in the current directory.
        device (str): e.g. ``'cpu'`` or ``'cuda:0'``.
        score_thr (float): Detection: draw instances scoring at least this.
        opacity (float): Segmentation: opacity of the label map, 0 to 1.

    Returns:
        str: One line saying what was drawn and where.

    Raises:
        StvitMMError: A missing or unusable input, config or checkpoint.
    """
    check_demo_inputs(image, config, checkpoint, score_thr, opacity, device)
    cfg = load_config(config)
    rgb = read_image(image)
    out_file = out_file or osp.splitext(osp.basename(image))[0] + '_pred.png'
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    model = init_model(cfg, checkpoint, device)
    result = draw_prediction(model, build_visualizer(model, opacity), image,
                             out_file, score_thr=score_thr, image=rgb)
    if cfg.default_scope == 'mmdet':
        n = int((result.pred_instances.scores >= score_thr).sum())
        what = f'{n} instances with score >= {score_thr}'
    else:
        n = len(result.pred_sem_seg.data.unique())
        what = f'{n} classes present'
    return f'{what}; result written to {out_file}'
