"""Running an exported model on one image in ONNX Runtime and writing what
it computed: what ``tools/deployment/onnx_inference.py`` does.

- A segmentor (outputs ``logits`` or ``labels``): the label map, resized to
  the original image as mmseg's ``postprocess_result`` does, drawn over the
  image with the config's class names and palette, beside the ground truth
  when one is given, its ignored pixels marked
  (:func:`stvit_mm.apis.label_pictures.segmentation_picture`).
- A classifier (an mmpretrain config's whole-model export, output
  ``logits``): the top 5 classes and their softmax scores, printed; nothing
  is written.
- A backbone or detector feature pyramid (any other outputs): every output
  saved to an ``.npz`` next to the picture, and the picture shows the image
  beside each map's mean absolute activation.
"""
import os
import os.path as osp
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.fileio import atomic_write
from ..errors import InputError
from .model_export import check_out_path
from .ort_runtime import OrtModel, load_test_image

__all__ = ['onnx_image_demo', 'activation_picture', 'top_classes']

#: How many classes a classifier's result lists.
TOPK = 5


def _segmentation(outputs, name: str, ori_shape) -> torch.Tensor:
    """(1, 1, H, W) labels at the original size, as mmseg post-processes
    (bilinear logits, then the arg max; nearest for labels)."""
    out = torch.from_numpy(outputs[0])
    if name == 'labels':
        return F.interpolate(out.float(), size=ori_shape,
                             mode='nearest').long()
    logits = F.interpolate(out, size=ori_shape, mode='bilinear',
                           align_corners=False)
    return logits.argmax(dim=1, keepdim=True)


def top_classes(logits: np.ndarray, classes=(), k: int = TOPK) -> str:
    """The ``k`` best classes of one image, best first.

    Args:
        logits (np.ndarray): (K,) class logits.
        classes (Sequence[str]): Class names, used when there are K.
        k (int): How many to list.

    Returns:
        str: A heading, then one ``rank. score class i: name`` line each
        (score: softmax, as mmpretrain's ``predict`` gives).
    """
    scores = torch.from_numpy(logits).double().softmax(0).numpy()
    order = np.argsort(-scores, kind='stable')[:k]
    named = len(classes) == len(scores)
    lines = [f'top {len(order)} of {len(scores)} classes:']
    for rank, i in enumerate(order, 1):
        name = f': {classes[i]}' if named else ''
        lines.append(f'{rank}. {scores[i]:.4f} class {i}{name}')
    return '\n'.join(lines)


def activation_picture(image: np.ndarray, maps) -> np.ndarray:
    """The RGB image beside each (1, C, h, w) map's mean absolute activation
    (a colour map scaled per map), each resized to the image's height.

    Returns:
        np.ndarray: (H, W_total, 3) uint8 RGB.
    """
    import cv2
    height, width = image.shape[:2]
    panels = [image]
    for output in maps:
        energy = np.abs(output[0]).mean(axis=0)
        span = energy.max() - energy.min()
        scaled = (energy - energy.min()) / (span if span > 0 else 1.)
        heat = cv2.applyColorMap((scaled * 255).astype(np.uint8),
                                 cv2.COLORMAP_VIRIDIS)[..., ::-1]
        panels.append(cv2.resize(heat, (width, height),
                                 interpolation=cv2.INTER_NEAREST))
    return np.concatenate(panels, axis=1)


def onnx_image_demo(config: str,
                    onnx_path: str,
                    image: str,
                    out_file: str,
                    force: bool = False,
                    threads: Optional[int] = None,
                    opacity: float = 0.5,
                    ground_truth: Optional[str] = None) -> str:
    """Run an exported model on one image and write the result.

    Args:
        config (str): The config the model was exported from (its test
            pipeline resizes the image; its dataset names the classes).
        onnx_path (str): The ``.onnx`` file (from ``pytorch2onnx.py``).
        image (str): The image file.
        out_file (str): The picture to write (``.png``); for feature
            outputs also ``<out_file stem>.npz``; none for a classifier.
        force (bool): Replace existing output files.
        threads (int, optional): ONNX Runtime threads.
        opacity (float): Segmentation: opacity of the label map.
        ground_truth (str, optional): Segmentation: the image's label-map
            png; drawn beside the prediction, and the pixels it ignores
            (255 after ``reduce_zero_label``) are marked ignored in both.

    Returns:
        str: One line saying what was written, or a classifier's top
        classes.

    Raises:
        InputError: Missing or unreadable image or ONNX file, an existing
            output (without ``force``), a graph that does not take an
            image, or ``ground_truth`` for a classifier.
    """
    import mmcv

    from ..apis.config import load_config
    from ..apis.inference import config_dataset_meta, read_image
    features_file = osp.splitext(out_file)[0] + '.npz'
    cfg = load_config(config)
    session = OrtModel(onnx_path, threads)
    # A whole classifier and a whole segmentor both output 'logits'.
    is_classifier = (cfg.default_scope == 'mmpretrain'
                     and session.output_names == ['logits'])
    if is_classifier:
        if ground_truth:
            raise InputError('--ground-truth: for segmentors only')
        logits = _run(session, load_test_image(cfg, image)['inputs'][None],
                      image, onnx_path)
        return top_classes(logits[0][0],
                           config_dataset_meta(cfg).get('classes', ()))
    is_segmentor = session.output_names[0] in ('logits', 'labels')
    check_out_path(out_file, force)
    if not is_segmentor:
        check_out_path(features_file, force)
    rgb = read_image(image)
    truth = None
    if ground_truth:
        from ..apis.val_pictures import label_map_ground_truth
        if not osp.isfile(ground_truth):
            raise InputError(f'--ground-truth {ground_truth} not found')
        truth = label_map_ground_truth(
            ground_truth, cfg.test_dataloader.dataset.get(
                'reduce_zero_label', False)).data[0].numpy()
        if truth.shape != rgb.shape[:2]:
            raise InputError(
                f'--ground-truth {ground_truth} is {truth.shape[1]}x'
                f'{truth.shape[0]}, the image {rgb.shape[1]}x'
                f'{rgb.shape[0]}; give the label map of this image')
    sample = load_test_image(cfg, image)
    batch = sample['inputs'][None].float()
    if session.output_names[0].startswith('stage'):
        # A backbone takes the image normalised, as the model's data
        # preprocessor would hand it over (the model's own: mmpretrain's
        # configs name it outside ``model``).
        from ..analysis.models import build_model
        from .wrappers import Preprocess
        batch = Preprocess(build_model(cfg).data_preprocessor)(batch)
    outputs = _run(session, batch, image, onnx_path)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if is_segmentor:
        from ..apis.label_pictures import (dataset_palette,
                                           segmentation_picture)
        labels = _segmentation(outputs, session.output_names[0],
                               rgb.shape[:2])
        meta = config_dataset_meta(cfg)
        picture = segmentation_picture(
            rgb, labels[0, 0].numpy(), truth, meta.get('classes', []),
            dataset_palette(meta), opacity)
        mmcv.imwrite(picture[..., ::-1], out_file)
        classes = len(labels.unique())
        return (f'{classes} classes present; label map drawn into '
                f'{out_file}')
    buffer = _npz_bytes(dict(zip(session.output_names, outputs)))
    atomic_write(buffer, features_file)
    resized = mmcv.imresize(rgb, (batch.shape[3], batch.shape[2]))
    picture = activation_picture(resized, outputs)
    mmcv.imwrite(picture[..., ::-1], out_file)
    shapes = ', '.join(f'{n} {tuple(o.shape)}'
                       for n, o in zip(session.output_names, outputs))
    return (f'features {shapes} saved to {features_file}; activation '
            f'picture written to {out_file}')


def _run(session: OrtModel, batch, image: str, onnx_path: str):
    """The graph's outputs for a (1, 3, H, W) batch; ONNX Runtime's errors
    (e.g. a size a fixed graph does not take) as InputError."""
    try:
        return session(batch.float())
    except Exception as e:  # onnxruntime's own error types
        raise InputError(f'ONNX Runtime failed on {image} with '
                         f'{onnx_path}: {e}') from e


def _npz_bytes(arrays) -> bytes:
    import io
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
