"""Deterministic synthetic "coloured shapes" datasets for the CPU demo.

Two on-disk layouts are generated from the *same* scenes (the same seed gives
the same pictures in both):

* ``'coco'``: instance segmentation in COCO format::

      <root>/annotations/instances_train.json
      <root>/annotations/instances_val.json
      <root>/train/000000.jpg ...
      <root>/val/000000.jpg ...

  Use with mmdet's ``CocoDataset``: ``ann_file='annotations/instances_train.json'``,
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

Scene design (chosen so that a small model learns it on a CPU in minutes):

* 4 classes, one distinct silhouette each: circle, square, triangle and a
  plus-shaped cross; squares, triangles and crosses are randomly rotated.
* Colour is *loosely* tied to the class: with probability
  ``1 - RANDOM_HUE_PROB`` an object's hue lies within +-12 (OpenCV hue units,
  0-179) of its class's hue in ``CLASS_HUES``; otherwise the hue is uniform.
  Colour is therefore a strong hint that gets the first epochs going, and
  shape is still needed to be right on the remaining quarter of objects.
  Objects are saturated and fairly bright; backgrounds are muted (low
  saturation) noise, two-colour gradients or stripes, so objects stand out
  without the background being flat.
* 1-4 objects per image, radius 8%-20% of the image side, fully inside the
  image. Later objects occlude earlier ones. A placement is only accepted when
  every object keeps at least ``MIN_VISIBLE_FRACTION`` of its area visible,
  and its visible part has no holes (COCO polygons cannot describe holes),
  no slivers and is not tiny, so every visible object is annotated and the
  masks match the pixels exactly.

Files are written only inside the target directory; generation is skipped when
the directory already holds a complete set made with the same arguments (see
:func:`generate_synthetic_dataset`).
"""
import json
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

GENERATOR_VERSION = 1

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'cross')
# RGB colours for drawing predictions, one per class, close to the class hue.
SHAPE_PALETTE = [(230, 40, 40), (150, 230, 40), (40, 220, 220), (150, 40, 230)]
# Mean hue of each class in OpenCV's 0-179 hue scale: red, chartreuse, cyan,
# violet, i.e. spread evenly around the colour wheel.
CLASS_HUES = (0, 45, 90, 135)
HUE_JITTER = 12
RANDOM_HUE_PROB = 0.25

COCO_METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)
ADE_METAINFO = dict(classes=SHAPE_CLASSES, palette=SHAPE_PALETTE)
ADE_METAINFO_WITH_BACKGROUND = dict(
    classes=('background', ) + SHAPE_CLASSES,
    palette=[(0, 0, 0)] + SHAPE_PALETTE)

MIN_RADIUS_FRACTION = 0.08
MAX_RADIUS_FRACTION = 0.2
MAX_OBJECTS = 4
MIN_VISIBLE_FRACTION = 0.5
MIN_VISIBLE_AREA = 20  # pixels; smaller visible parts are not annotated
MIN_COMPONENT_AREA = 6  # pixels; placements leaving such slivers are redrawn
PLACEMENT_ATTEMPTS = 20

KINDS = ('coco', 'ade')
SPLITS = ('train', 'val')
ADE_SPLIT_DIRS = {'train': 'training', 'val': 'validation'}
MANIFEST_NAME = 'synthetic_manifest.json'
PARTIAL_NAME = 'synthetic_manifest.partial.json'
JPEG_QUALITY = 95


# ---------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------
def _rotated(points: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate 2D points (N, 2) around the origin by ``angle_deg``."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rot.T


def shape_mask(label: int, cx: float, cy: float, radius: float, angle: float,
               size: int) -> np.ndarray:
    """Rasterise one shape.

    Args:
        label (int): Index into :data:`SHAPE_CLASSES`.
        cx (float): Centre x in pixels.
        cy (float): Centre y in pixels.
        radius (float): Circumradius in pixels.
        angle (float): Rotation in degrees (ignored for the circle).
        size (int): Side of the square canvas.

    Returns:
        np.ndarray: Boolean mask of shape (size, size).
    """
    canvas = np.zeros((size, size), np.uint8)
    name = SHAPE_CLASSES[label]
    if name == 'circle':
        cv2.circle(canvas, (int(round(cx)), int(round(cy))),
                   int(round(radius)), 1, thickness=-1)
        return canvas.astype(bool)
    if name == 'square':
        # Corners on the circumcircle, i.e. side radius * sqrt(2).
        corners = np.deg2rad([45, 135, 225, 315])
        pts = np.stack([np.cos(corners), np.sin(corners)], 1) * radius
    elif name == 'triangle':
        corners = np.deg2rad([-90, 30, 150])
        pts = np.stack([np.cos(corners), np.sin(corners)], 1) * radius
    elif name == 'cross':
        # A plus sign whose arms are a third of the radius wide on each side.
        w, r = radius / 3, radius
        pts = np.array([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w),
                        (w, r), (-w, r), (-w, w), (-r, w), (-r, -w),
                        (-w, -w)])
    else:  # pragma: no cover - guarded by SHAPE_CLASSES
        raise ValueError(f'unknown shape {name}')
    pts = _rotated(pts, angle) + (cx, cy)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return canvas.astype(bool)


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    """Convert one OpenCV-scaled HSV colour to a float BGR triple."""
    hsv = np.array([[[h, s, v]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A random low-saturation BGR colour for backgrounds."""
    return _hsv_to_bgr(
        rng.integers(0, 180), rng.integers(0, 70), rng.integers(40, 220))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw a muted textured background: noise, a gradient or stripes.

    Returns:
        np.ndarray: float32 BGR image of shape (size, size, 3).
    """
    kind = rng.integers(3)
    c0, c1 = _muted_colour(rng), _muted_colour(rng)
    if kind == 0:  # smooth blotchy noise around one colour
        # Mostly brightness noise with a little colour, so the texture stays
        # muted next to the saturated objects.
        cells = (size // 16 + 1, size // 16 + 1)
        coarse = (rng.normal(0, 25, cells + (1, )) +
                  rng.normal(0, 8, cells + (3, )))
        noise = cv2.resize(coarse.astype(np.float32), (size, size),
                           interpolation=cv2.INTER_CUBIC)
        return c0 + noise
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(0, np.pi)
    proj = np.cos(theta) * xx + np.sin(theta) * yy
    if kind == 1:  # linear two-colour gradient at a random angle
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    else:  # soft stripes with a random period and angle
        period = rng.uniform(0.05, 0.25)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * proj / period)
    return c0 + t[..., None] * (c1 - c0)


def _object_colour(rng: np.random.Generator, label: int) -> np.ndarray:
    """Pick a saturated BGR colour, usually near the class's hue."""
    if rng.random() < RANDOM_HUE_PROB:
        hue = rng.integers(0, 180)
    else:
        hue = (CLASS_HUES[label] +
               rng.integers(-HUE_JITTER, HUE_JITTER + 1)) % 180
    return _hsv_to_bgr(hue, rng.integers(140, 256), rng.integers(150, 256))


def _has_hole(mask: np.ndarray) -> bool:
    """Whether a boolean mask has an interior hole."""
    _, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    # In RETR_CCOMP a contour with a parent is the boundary of a hole.
    return hierarchy is not None and bool((hierarchy[0, :, 3] >= 0).any())


def _visible_masks(full_masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Visible part of each mask when later masks are drawn on top."""
    visible = []
    covered = np.zeros_like(full_masks[0]) if full_masks else None
    for mask in reversed(full_masks):
        visible.append(mask & ~covered)
        covered = covered | mask
    return visible[::-1]


def _has_sliver(mask: np.ndarray) -> bool:
    """Whether a mask has a connected piece under MIN_COMPONENT_AREA."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8)
    return bool((stats[1:, cv2.CC_STAT_AREA] < MIN_COMPONENT_AREA).any())


def _placement_ok(full_masks: Sequence[np.ndarray]) -> bool:
    """Whether every object stays well visible: at least half of it and
    MIN_VISIBLE_AREA pixels, no holes and no slivers. The annotation then
    describes exactly what is drawn."""
    for full, vis in zip(full_masks, _visible_masks(full_masks)):
        area = int(vis.sum())
        if (area < MIN_VISIBLE_AREA
                or area < MIN_VISIBLE_FRACTION * int(full.sum())
                or _has_hole(vis) or _has_sliver(vis)):
            return False
    return True


def generate_scene(rng: np.random.Generator,
                   size: int) -> Tuple[np.ndarray, List[int], List[np.ndarray]]:
    """Draw one image of 1-4 overlapping coloured shapes.

    Args:
        rng (np.random.Generator): Source of randomness; the scene is a pure
            function of its state.
        size (int): Image side in pixels.

    Returns:
        tuple: ``(image, labels, full_masks)``: a uint8 BGR image of shape
        (size, size, 3), the class index of each object in drawing order
        (later ones on top), and each object's unoccluded boolean mask.
    """
    image = _background(rng, size)
    labels, masks = [], []
    for _ in range(rng.integers(1, MAX_OBJECTS + 1)):
        for _ in range(PLACEMENT_ATTEMPTS):
            label = int(rng.integers(len(SHAPE_CLASSES)))
            radius = rng.uniform(MIN_RADIUS_FRACTION,
                                 MAX_RADIUS_FRACTION) * size
            cx, cy = rng.uniform(radius, size - radius, 2)
            mask = shape_mask(label, cx, cy, radius, rng.uniform(0, 360), size)
            if _placement_ok(masks + [mask]):
                labels.append(label)
                masks.append(mask)
                break
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for label, mask in zip(labels, masks):
        colour = _object_colour(rng, label)
        # A gentle brightness ramp across the object so it is not flat.
        gx, gy = rng.uniform(-40, 40, 2)
        shade = (gx * xx + gy * yy)[..., None]
        image[mask] = (colour + shade)[mask]
    image += rng.normal(0, 4, image.shape)
    # Slight blur so edges look anti-aliased; masks stay the drawn pixels.
    image = cv2.GaussianBlur(image.astype(np.float32), (3, 3), 0.6)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), labels, masks


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for one image, independent of how many images a split
    has, so growing a split keeps the existing images."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


# ---------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------
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
    for label, vis in zip(labels, _visible_masks(full_masks)):
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


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def _image_name(index: int) -> str:
    return f'{index:06d}'


def planned_files(kind: str, num_train: int, num_val: int) -> List[str]:
    """Relative paths of every file a generation writes, manifest excluded.

    Args:
        kind (str): ``'coco'`` or ``'ade'``.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.

    Returns:
        list[str]: Sorted POSIX-style relative paths.
    """
    files = []
    for split, num in zip(SPLITS, (num_train, num_val)):
        names = [_image_name(i) for i in range(num)]
        if kind == 'coco':
            files.append(f'annotations/instances_{split}.json')
            files += [f'{split}/{n}.jpg' for n in names]
        elif kind == 'ade':
            sub = ADE_SPLIT_DIRS[split]
            files += [f'images/{sub}/{n}.jpg' for n in names]
            files += [f'annotations/{sub}/{n}.png' for n in names]
        else:
            raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    return sorted(files)


def _write_bytes(root: str, rel: str, data: bytes) -> None:
    path = osp.join(root, rel)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def _encode(ext: str, array: np.ndarray) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == '.jpg' else []
    ok, buf = cv2.imencode(ext, array, params)
    if not ok:
        raise RuntimeError(f'OpenCV could not encode a {ext} image')
    return buf.tobytes()


def _dump_json(obj) -> bytes:
    # Fixed separators and key order: identical arguments, identical bytes.
    return json.dumps(obj, sort_keys=True, separators=(',', ':')).encode()


def _write_split(kind: str, root: str, split: str, num: int, size: int,
                 seed: int, progress: Optional[Callable[[str, int, int],
                                                        None]]) -> None:
    """Generate and write one split's images (and annotations)."""
    images, annotations = [], []
    for index in range(num):
        image, labels, masks = generate_scene(
            scene_rng(seed, split, index), size)
        name = _image_name(index)
        if kind == 'coco':
            _write_bytes(root, f'{split}/{name}.jpg', _encode('.jpg', image))
            images.append(
                dict(id=index + 1, file_name=f'{name}.jpg', height=size,
                     width=size))
            annotations += scene_to_coco(labels, masks, index + 1,
                                         len(annotations) + 1)
        else:
            sub = ADE_SPLIT_DIRS[split]
            _write_bytes(root, f'images/{sub}/{name}.jpg',
                         _encode('.jpg', image))
            _write_bytes(root, f'annotations/{sub}/{name}.png',
                         _encode('.png',
                                 scene_to_label_map(labels, masks, size)))
        if progress is not None:
            progress(split, index + 1, num)
    if kind == 'coco':
        coco = dict(
            info=dict(description='stvit_mm synthetic shapes', split=split,
                      seed=seed, version=GENERATOR_VERSION),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=[
                dict(id=i + 1, name=n, supercategory='shape')
                for i, n in enumerate(SHAPE_CLASSES)
            ])
        _write_bytes(root, f'annotations/instances_{split}.json',
                     _dump_json(coco))


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _params(kind: str, num_train: int, num_val: int, size: int,
            seed: int) -> dict:
    return dict(kind=kind, num_train=int(num_train), num_val=int(num_val),
                size=int(size), seed=int(seed), version=GENERATOR_VERSION)


def is_complete(root: str, kind: str, num_train: int = 300, num_val: int = 50,
                size: int = 256, seed: int = 0) -> bool:
    """Whether ``root`` holds a finished generation with these arguments.

    The manifest is written last, and lists every file with its size, so a
    generation that was interrupted, or a file that was truncated or removed
    since, makes this False.

    Args:
        root (str): Dataset directory.
        kind (str): ``'coco'`` or ``'ade'``.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        size (int): Image side.
        seed (int): Seed.

    Returns:
        bool: True when the data can be used as is.
    """
    manifest = _read_json(osp.join(root, MANIFEST_NAME))
    if not manifest or manifest.get('params') != _params(
            kind, num_train, num_val, size, seed):
        return False
    files = manifest.get('files', {})
    if sorted(files) != planned_files(kind, num_train, num_val):
        return False
    for rel, nbytes in files.items():
        path = osp.join(root, rel)
        if not osp.isfile(path) or osp.getsize(path) != nbytes:
            return False
    return True


def _owned_files(root: str) -> List[str]:
    """Files a previous (complete or interrupted) generation wrote here."""
    owned = set()
    for name in (MANIFEST_NAME, PARTIAL_NAME):
        record = _read_json(osp.join(root, name)) or {}
        owned.update(record.get('files', {}))
    return sorted(owned)


def generate_synthetic_dataset(
        kind: str,
        root: str,
        num_train: int = 300,
        num_val: int = 50,
        size: int = 256,
        seed: int = 0,
        progress: Optional[Callable[[str, int, int], None]] = None) -> bool:
    """Generate a synthetic shapes dataset unless it is already complete.

    Safety rules:

    * Nothing is done when :func:`is_complete` holds.
    * A non-empty ``root`` that no earlier generation wrote into (neither
      manifest nor partial marker) is refused, so real data is never
      overwritten.
    * A partial marker naming every file is written first and the manifest
      last (atomically). An interrupted run therefore leaves no manifest and
      is redone on the next call; files of an earlier generation that the new
      arguments no longer produce are removed, other files are never touched.

    Args:
        kind (str): ``'coco'`` or ``'ade'``.
        root (str): Target directory.
        num_train (int): Number of training images. Defaults to 300.
        num_val (int): Number of validation images. Defaults to 50.
        size (int): Image side in pixels. Defaults to 256.
        seed (int): Seed; the same arguments give byte-identical files.
            Defaults to 0.
        progress (callable, optional): Called as ``progress(split, done,
            total)`` after each image.

    Returns:
        bool: True if files were generated, False if existing ones were kept.
    """
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be at least 1')
    if size < 32:
        raise ValueError(f'size must be at least 32 pixels, got {size}')
    if is_complete(root, kind, num_train, num_val, size, seed):
        return False
    manifest_path = osp.join(root, MANIFEST_NAME)
    partial_path = osp.join(root, PARTIAL_NAME)
    if (osp.isdir(root) and os.listdir(root) and not osp.exists(manifest_path)
            and not osp.exists(partial_path)):
        raise FileExistsError(
            f'{root} is not empty and was not written by this generator; '
            'refusing to write into it. Choose an empty or new directory.')
    os.makedirs(root, exist_ok=True)

    params = _params(kind, num_train, num_val, size, seed)
    planned = planned_files(kind, num_train, num_val)
    owned = _owned_files(root)
    # The marker lists old files too, so a second interruption still knows
    # which files it may clean up.
    with open(partial_path, 'wb') as f:
        f.write(_dump_json(dict(params=params,
                                files={p: -1 for p in sorted(set(planned) |
                                                             set(owned))})))
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    planned_set = set(planned)
    for rel in owned:
        path = osp.join(root, rel)
        if rel not in planned_set and osp.isfile(path):
            os.remove(path)

    for split, num in zip(SPLITS, (num_train, num_val)):
        _write_split(kind, root, split, num, size, seed, progress)

    manifest = dict(
        params=params,
        classes=list(SHAPE_CLASSES),
        files={rel: osp.getsize(osp.join(root, rel)) for rel in planned})
    tmp_path = manifest_path + '.tmp'
    with open(tmp_path, 'wb') as f:
        f.write(_dump_json(manifest))
    os.replace(tmp_path, manifest_path)
    os.remove(partial_path)
    return True
