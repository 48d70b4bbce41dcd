"""Drawing the synthetic "coloured shapes" scenes.

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

A scene is a pure function of its random generator: the order of the draws
below is part of the data format (changing it changes every file).
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'SHAPE_CLASSES', 'SHAPE_PALETTE', 'CLASS_HUES', 'MIN_VISIBLE_AREA',
    'MIN_COMPONENT_AREA', 'shape_mask', 'visible_masks', 'generate_scene'
]

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'cross')
# RGB colours for drawing predictions, one per class, close to the class hue.
SHAPE_PALETTE = [(230, 40, 40), (150, 230, 40), (40, 220, 220), (150, 40, 230)]
# Mean hue of each class in OpenCV's 0-179 hue scale: red, chartreuse, cyan,
# violet, i.e. spread evenly around the colour wheel.
CLASS_HUES = (0, 45, 90, 135)
HUE_JITTER = 12
RANDOM_HUE_PROB = 0.25

MIN_RADIUS_FRACTION = 0.08
MAX_RADIUS_FRACTION = 0.2
MAX_OBJECTS = 4
MIN_VISIBLE_FRACTION = 0.5
MIN_VISIBLE_AREA = 20  # pixels; smaller visible parts are not annotated
MIN_COMPONENT_AREA = 6  # pixels; placements leaving such slivers are redrawn
PLACEMENT_ATTEMPTS = 20

#: ``(image, labels, full_masks)``, as returned by :func:`generate_scene`.
Scene = Tuple[np.ndarray, List[int], List[np.ndarray]]


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


def visible_masks(full_masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Visible part of each mask when later masks are drawn on top.

    Args:
        full_masks (Sequence[np.ndarray]): Unoccluded boolean masks in
            drawing order.

    Returns:
        list[np.ndarray]: The visible part of each, in the same order.
    """
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
    for full, vis in zip(full_masks, visible_masks(full_masks)):
        area = int(vis.sum())
        if (area < MIN_VISIBLE_AREA
                or area < MIN_VISIBLE_FRACTION * int(full.sum())
                or _has_hole(vis) or _has_sliver(vis)):
            return False
    return True


def generate_scene(rng: np.random.Generator, size: int,
                   label: Optional[int] = None) -> Scene:
    """Draw one image of 1-4 overlapping coloured shapes.

    Args:
        rng (np.random.Generator): Source of randomness; the scene is a pure
            function of its state.
        size (int): Image side in pixels.
        label (int, optional): Draw exactly one shape, of this class: a
            classification image.

    Returns:
        tuple: ``(image, labels, full_masks)``: a uint8 BGR image of shape
        (size, size, 3), the class index of each object in drawing order
        (later ones on top), and each object's unoccluded boolean mask.
    """
    image = _background(rng, size)
    labels, masks = [], []
    wanted = label
    count = 1 if wanted is not None else rng.integers(1, MAX_OBJECTS + 1)
    for _ in range(count):
        for _ in range(PLACEMENT_ATTEMPTS):
            label = (int(rng.integers(len(SHAPE_CLASSES))) if wanted is None
                     else wanted)
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
