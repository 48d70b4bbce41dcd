"""Pictures that show what the metrics score.

* Label maps (segmentation): pixels with the ignore index (255: the
  background that ``reduce_zero_label`` drops) are drawn as ignored, grey
  and striped, in the ground truth and in the prediction alike, since mIoU
  never scores them; a legend names the classes and the ignored pixels.
* Detection: each panel is drawn at 512 px or more, and a caption states
  the score threshold of the drawing and the one the metrics use.

Used by the quickstart's pictures (:mod:`.val_pictures`) and by
``tools/deployment/onnx_inference.py``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['IGNORE_INDEX', 'MIN_PANEL', 'panel_scale', 'label_panel',
           'label_legend', 'caption_strip', 'stack_rows', 'metric_score_thr',
           'segmentation_picture', 'dataset_palette', 'upscale_image']

#: mmseg's ignore index: pixels the metrics and the loss never see.
IGNORE_INDEX = 255
#: Smallest side of a drawn panel, in pixels.
MIN_PANEL = 512
IGNORED_RGB = (110, 110, 110)


def panel_scale(shape: Tuple[int, int], minimum: int = MIN_PANEL) -> int:
    """Whole-number upscaling that brings the shorter side to ``minimum``
    or more (1 for images that are already large enough)."""
    return max(1, math.ceil(minimum / max(1, min(shape[:2]))))


def upscale_image(image: np.ndarray, scale: int) -> np.ndarray:
    """The image ``scale`` times larger (bilinear)."""
    import cv2
    if scale == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (w * scale, h * scale),
                      interpolation=cv2.INTER_LINEAR)


def _repeat(array: np.ndarray, scale: int) -> np.ndarray:
    """A label map or mask ``scale`` times larger, pixel by pixel."""
    return array.repeat(scale, 0).repeat(scale, 1)


def label_panel(image: np.ndarray, labels: np.ndarray,
                palette: Sequence[Sequence[int]], opacity: float = 0.6,
                ignored: Optional[np.ndarray] = None,
                scale: int = 1) -> np.ndarray:
    """A label map blended over the image; ignored pixels grey, striped.

    The image is upscaled first and the labels painted on it pixel by
    pixel, so a pixel's colour depends on its own label only: two panels
    of one image draw their ignored pixels identically.

    Args:
        image (np.ndarray): RGB (H, W, 3) uint8.
        labels (np.ndarray): (H, W) class indices; ``IGNORE_INDEX`` (or any
            index without a palette entry) counts as ignored.
        palette (Sequence): RGB colour per class.
        opacity (float): Opacity of the class colours, 0 to 1.
        ignored (np.ndarray, optional): Bool (H, W): also draw these as
            ignored (the ground truth's ignored pixels, on a prediction).
        scale (int): Upscaling factor of the panel.

    Returns:
        np.ndarray: RGB (H * scale, W * scale, 3) uint8.
    """
    labels = _repeat(np.asarray(labels).astype(np.int64), scale)
    out = upscale_image(image, scale).astype(np.float32)
    colours = np.asarray(palette, np.float32).reshape(-1, 3)
    known = (labels >= 0) & (labels < len(colours))
    ignore = ~known if ignored is None else (~known | _repeat(ignored,
                                                              scale))
    # No class colour under the ignored pixels: the image alone, greyed.
    paint = known & ~ignore
    out[paint] = ((1 - opacity) * out[paint] +
                  opacity * colours[labels[paint]])
    out[ignore] = 0.35 * out[ignore] + 0.65 * np.array(IGNORED_RGB)
    out = out.clip(0, 255).astype(np.uint8)
    h, w = ignore.shape
    stripes = (np.add.outer(np.arange(h), np.arange(w)) // 4) % 3 == 0
    out[ignore & stripes] = (200, 200, 200)
    return out


def _text(canvas: np.ndarray, text: str, x: int, y: int,
          size: float = 0.5) -> None:
    import cv2
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size,
                (20, 20, 20), 1, cv2.LINE_AA)


def caption_strip(width: int, lines: Sequence[str]) -> np.ndarray:
    """White RGB strip with one line of text per entry (words wrapped to
    the width)."""
    wrapped: List[str] = []
    per_line = max(20, width // 9)
    for line in lines:
        words, current = line.split(), ''
        for word in words:
            if current and len(current) + 1 + len(word) > per_line:
                wrapped.append(current)
                current = word
            else:
                current = f'{current} {word}'.strip()
        wrapped.append(current)
    strip = np.full((22 * len(wrapped) + 10, width, 3), 255, np.uint8)
    for i, line in enumerate(wrapped):
        _text(strip, line, 8, 22 * (i + 1))
    return strip


def label_legend(width: int, classes: Sequence[str],
                 palette: Sequence[Sequence[int]], present: Sequence[int],
                 note: str = '') -> np.ndarray:
    """Legend strip: a swatch per class present, then the ignored pixels.

    Args:
        width (int): Width of the picture it goes under.
        classes (Sequence[str]): Class names.
        palette (Sequence): RGB per class.
        present (Sequence[int]): Classes to list.
        note (str): Text after the ignored swatch.

    Returns:
        np.ndarray: RGB strip, ``width`` wide.
    """
    entries = [(classes[c], tuple(int(v) for v in palette[c]))
               for c in present if 0 <= c < len(classes)]
    entries.append((f'ignored ({IGNORE_INDEX}){note}', None))
    rows, x, y = [[]], 8, 0
    for name, colour in entries:
        need = 26 + 8 * len(name) + 16
        if x + need > width and rows[-1]:
            rows.append([])
            x = 8
        rows[-1].append((x, name, colour))
        x += need
    strip = np.full((26 * len(rows) + 8, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = 8 + 26 * r
        for x, name, colour in row:
            if colour is None:
                swatch = label_panel(np.zeros((18, 18, 3), np.uint8),
                                     np.full((18, 18), IGNORE_INDEX),
                                     [], 1.0)
            else:
                swatch = np.empty((18, 18, 3), np.uint8)
                swatch[:] = colour
            strip[y:y + 18, x:x + 18] = swatch
            _text(strip, name, x + 24, y + 14)
    return strip


def stack_rows(*rows: np.ndarray) -> np.ndarray:
    """Stack RGB strips of equal width vertically."""
    return np.concatenate(rows, axis=0)


def metric_score_thr(model_cfg: Dict) -> Tuple[Optional[float],
                                               Optional[int]]:
    """The score threshold and the detections per image a detector keeps
    at test time (what COCO mAP is computed from), from ``model.test_cfg``
    (``rcnn`` for two-stage detectors)."""
    test_cfg = model_cfg.get('test_cfg') or {}
    test_cfg = test_cfg.get('rcnn', test_cfg) or {}
    return test_cfg.get('score_thr'), test_cfg.get('max_per_img')


def segmentation_picture(image: np.ndarray, pred: np.ndarray,
                         truth: Optional[np.ndarray], classes: Sequence[str],
                         palette: Sequence[Sequence[int]],
                         opacity: float = 0.6) -> np.ndarray:
    """Ground truth | prediction (or the prediction alone) as mIoU scores
    them, each panel at least :data:`MIN_PANEL` pixels, above a caption and
    a legend.

    Args:
        image (np.ndarray): RGB (H, W, 3) uint8.
        pred (np.ndarray): (H, W) predicted classes.
        truth (np.ndarray, optional): (H, W) ground truth; its
            ``IGNORE_INDEX`` pixels are drawn as ignored in both panels.
        classes (Sequence[str]): Class names.
        palette (Sequence): RGB per class.
        opacity (float): Opacity of the class colours.

    Returns:
        np.ndarray: RGB picture.
    """
    scale = panel_scale(image.shape[:2])
    ignored = None if truth is None else truth == IGNORE_INDEX
    panels = [label_panel(image, pred, palette, opacity, ignored, scale)]
    present = {int(v) for v in np.unique(
        pred if ignored is None else pred[~ignored])}
    if truth is None:
        text = ('Prediction. No ground truth given (--ground-truth), so '
                'every pixel shows a class, including any that mIoU '
                f'ignores ({IGNORE_INDEX} in the ground truth).')
    else:
        panels.insert(0, label_panel(image, truth, palette, opacity,
                                     scale=scale))
        present |= {int(v) for v in np.unique(truth)}
        text = ('Left: ground truth. Right: prediction. Grey stripes: '
                'pixels the ground truth ignores, which mIoU does not '
                'score; the prediction there is not shown.')
    row = np.concatenate(panels, axis=1)
    width = row.shape[1]
    return stack_rows(row, caption_strip(width, [text]),
                      label_legend(width, classes, palette, sorted(present),
                                   ': not scored by mIoU'))


def dataset_palette(meta: dict) -> list:
    """The palette of ``meta``, else a fixed one per class."""
    if meta.get('palette'):
        return list(meta['palette'])
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (len(meta.get('classes', [])), 3)).tolist()
