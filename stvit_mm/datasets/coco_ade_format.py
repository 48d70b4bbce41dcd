"""How a synthetic scene is written down: COCO instances or ADE20K labels.

Two on-disk layouts describe the *same* scenes:

* ``'coco'``: instance segmentation in COCO format::

      <root>/annotations/instances_train.json
      <root>/annotations/instances_val.json
      <root>/train/000000.jpg ...
      <root>/val/000000.jpg ...

  Use with mmdet's ``CocoDataset``:
  ``ann_file='annotations/instances_train.json'``,
  ``data_prefix=dict(img='train/')``, ``metainfo=COCO_METAINFO``.

* ``'ade'``: semantic segmentation in the ADE20K layout::

      <root>/images/{training,validation}/000000.jpg
      <root>/annotations/{training,validation}/000000.png

  The label png holds 0 for background and ``k + 1`` for ``SHAPE_CLASSES[k]``,
  which is ADE20K's convention (0 = "other"). Two ways to read it with mmseg's
  ``BaseSegDataset`` (``img_suffix='.jpg'``, ``seg_map_suffix='.png'``):

  - ``reduce_zero_label=True`` and ``metainfo=ADE_METAINFO`` (4 classes,
    background ignored, exactly like ADE20K);
  - ``reduce_zero_label=False`` and ``metainfo=ADE_METAINFO_WITH_BACKGROUND``
    (5 classes, background learnt and scored as class 0).

  ``ADE20KDataset`` itself cannot be given these class names: mmseg only lets
  a dataset's classes be renamed to a subset of its built-in ones.

* ``'imagenet'``: classification in the ImageNet layout, one shape per image
  (image ``i`` shows class ``i % 4``)::

      <root>/{train,val}/<class>/000000.jpg
      <root>/meta/{train,val}.txt      # "<class>/000000.jpg <label>"

  Use with mmpretrain's ``ImageNet`` dataset (``split='train'`` / ``'val'``,
  ``metainfo=IMAGENET_METAINFO``), which reads the labels from ``meta/``.
"""
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .scenes import (MIN_COMPONENT_AREA, MIN_VISIBLE_AREA, SHAPE_CLASSES,
                     SHAPE_PALETTE, visible_masks)

__all__ = [
    'KINDS', 'SPLITS', 'ADE_SPLIT_DIRS', 'COCO_METAINFO', 'ADE_METAINFO',
    'ADE_METAINFO_WITH_BACKGROUND', 'IMAGENET_METAINFO', 'image_name',
    'classification_label', 'classification_file', 'planned_files',
    'mask_to_coco', 'scene_to_coco', 'scene_to_label_map', 'coco_file'
]

KINDS = ('coco', 'ade', 'imagenet')
SPLITS = ('train', 'val')
ADE_SPLIT_DIRS = {'train': 'training', 'val': 'validation'}

COCO_METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)
ADE_METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)
IMAGENET_METAINFO = dict(classes=SHAPE_CLASSES)
ADE_METAINFO_WITH_BACKGROUND = dict(
    classes=('background', ) + SHAPE_CLASSES,
    palette=[(0, 0, 0)] + SHAPE_PALETTE)


def image_name(index: int) -> str:
    """File name stem of the ``index``-th image of a split."""
    return f'{index:06d}'


def classification_label(index: int) -> int:
    """Class of the ``index``-th image of an ``'imagenet'`` split: the
    classes in turn, so every split is balanced."""
    return index % len(SHAPE_CLASSES)


def classification_file(index: int) -> str:
    """``<class>/<name>.jpg`` of the ``index``-th image of a split."""
    return (f'{SHAPE_CLASSES[classification_label(index)]}/'
            f'{image_name(index)}.jpg')


def planned_files(kind: str, num_train: int, num_val: int) -> List[str]:
    """Relative paths of every file a generation writes, manifest excluded.

    Args:
        kind (str): ``'coco'``, ``'ade'`` or ``'imagenet'``.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.

    Returns:
        list[str]: Sorted POSIX-style relative paths.
    """
    files = []
    for split, num in zip(SPLITS, (num_train, num_val)):
        names = [image_name(i) for i in range(num)]
        if kind == 'coco':
            files.append(f'annotations/instances_{split}.json')
            files += [f'{split}/{n}.jpg' for n in names]
        elif kind == 'ade':
            sub = ADE_SPLIT_DIRS[split]
            files += [f'images/{sub}/{n}.jpg' for n in names]
            files += [f'annotations/{sub}/{n}.png' for n in names]
        elif kind == 'imagenet':
            files.append(f'meta/{split}.txt')
            files += [f'{split}/{classification_file(i)}'
                      for i in range(num)]
        else:
            raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    return sorted(files)


def _drop_small_components(mask: np.ndarray) -> np.ndarray:
    """Remove connected components smaller than MIN_COMPONENT_AREA."""
    num, comp, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(num, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= MIN_COMPONENT_AREA
    return keep[comp]


def mask_to_coco(mask: np.ndarray) -> Optional[dict]:
    """Describe a visible mask as COCO polygons, bbox and area.

    Args:
        mask (np.ndarray): Boolean visible mask of shape (H, W).

    Returns:
        dict | None: ``segmentation`` (list of flat ``[x0, y0, x1, ...]``
        polygons), ``bbox`` ``[x, y, w, h]`` and ``area`` (pixels), or None
        when the visible area is too small to annotate.
    """
    mask = _drop_small_components(mask)
    area = int(mask.sum())
    if area < MIN_VISIBLE_AREA:
        return None
    # Contours run through boundary pixel centres, which loses half a pixel
    # all round (~5% of a small shape's area once pycocotools rasterises the
    # polygon). Tracing the 2x-upsampled mask and mapping back, x -> (x +
    # 0.5) / 2, puts the outline a quarter pixel inside the true pixel edges,
    # and the decoded polygon then reproduces the mask exactly. approxPolyDP
    # with half an upsampled pixel drops collinear staircase points without
    # changing the decoded mask.
    up = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2,
                    interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        contour = cv2.approxPolyDP(contour, 0.5, True)
        if len(contour) >= 3:
            polygons.append(((contour.reshape(-1) + 0.5) / 2).tolist())
    if not polygons:
        return None
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
    return dict(segmentation=polygons, bbox=bbox, area=area)


def scene_to_coco(labels: Sequence[int], full_masks: Sequence[np.ndarray],
                  image_id: int, first_ann_id: int) -> List[dict]:
    """COCO annotation dicts for one scene.

    Args:
        labels (Sequence[int]): Class index per object (drawing order).
        full_masks (Sequence[np.ndarray]): Unoccluded mask per object.
        image_id (int): The image's COCO id.
        first_ann_id (int): Id for the first annotation.

    Returns:
        list[dict]: One annotation per sufficiently visible object.
    """
    anns = []
    if not full_masks:
        return anns
    for label, vis in zip(labels, visible_masks(full_masks)):
        desc = mask_to_coco(vis)
        if desc is None:
            continue
        anns.append(
            dict(
                id=first_ann_id + len(anns),
                image_id=image_id,
                category_id=label + 1,
                iscrowd=0,
                **desc))
    return anns


def scene_to_label_map(labels: Sequence[int], full_masks: Sequence[np.ndarray],
                       size: int) -> np.ndarray:
    """ADE20K-style label map: 0 background, ``k + 1`` for class ``k``."""
    label_map = np.zeros((size, size), np.uint8)
    for label, mask in zip(labels, full_masks):
        label_map[mask] = label + 1  # later objects overwrite: occlusion
    return label_map


def coco_file(split: str, images: List[dict], annotations: List[dict],
              seed: int, version: int) -> dict:
    """The content of one split's COCO annotation file.

    Args:
        split (str): ``'train'`` or ``'val'``.
        images (list[dict]): COCO image records.
        annotations (list[dict]): COCO annotations (see
            :func:`scene_to_coco`).
        seed (int): The generation's seed, recorded in ``info``.
        version (int): The generator's version, recorded in ``info``.

    Returns:
        dict: ``info``, ``licenses``, ``images``, ``annotations`` and
        ``categories`` (ids ``1..4`` in :data:`SHAPE_CLASSES` order).
    """
    return dict(
        info=dict(description='stvit_mm synthetic shapes', split=split,
                  seed=seed, version=version),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[
            dict(id=i + 1, name=n, supercategory='shape')
            for i, n in enumerate(SHAPE_CLASSES)
        ])
