"""Deterministic synthetic "coloured shapes" datasets for the CPU demo.

The same scenes (:mod:`~stvit_mm.datasets.scenes`) are written in two
layouts (:mod:`~stvit_mm.datasets.coco_ade_format`): ``'coco'`` instance
segmentation and ``'ade'`` semantic segmentation. The same seed gives the
same pictures in both, and the same arguments give byte-identical files.
``'imagenet'`` (classification) draws one shape per image instead.

Files are written only inside the target directory; generation is skipped when
the directory already holds a complete set made with the same arguments (see
:func:`generate_synthetic_dataset`). A partial marker written first and a
manifest written last make an interrupted generation recognisable, and
resumable by running it again.

The names of :mod:`scenes` and :mod:`coco_ade_format` that configs and
tools use (classes, palette, metainfo, ``KINDS``) are importable from here
too.
"""
import json
import os
import os.path as osp
from typing import Callable, List, Optional

import cv2
import numpy as np

from ..errors import StvitMMError
from .coco_ade_format import (ADE_METAINFO, ADE_METAINFO_WITH_BACKGROUND,
                              ADE_SPLIT_DIRS, COCO_METAINFO,
                              IMAGENET_METAINFO, KINDS, SPLITS,
                              classification_file, classification_label,
                              coco_file, image_name, planned_files,
                              scene_to_coco, scene_to_label_map)
from .scenes import SHAPE_CLASSES, SHAPE_PALETTE, generate_scene

__all__ = [
    'SyntheticDataError', 'GENERATOR_VERSION', 'MANIFEST_NAME',
    'PARTIAL_NAME', 'scene_rng', 'is_complete', 'generate_synthetic_dataset',
    # Re-exported for configs and tools (see the module docstring).
    'SHAPE_CLASSES', 'SHAPE_PALETTE', 'COCO_METAINFO', 'ADE_METAINFO',
    'ADE_METAINFO_WITH_BACKGROUND', 'IMAGENET_METAINFO', 'KINDS'
]

#: Recorded in the manifest and the COCO files; bump it whenever the same
#: arguments start to give other bytes, so old sets are regenerated.
GENERATOR_VERSION = 1

MANIFEST_NAME = 'synthetic_manifest.json'
PARTIAL_NAME = 'synthetic_manifest.partial.json'
JPEG_QUALITY = 95

Progress = Callable[[str, int, int], None]


class SyntheticDataError(StvitMMError, ValueError):
    """The arguments of a generation are impossible.

    Also a ``ValueError``, which the generator raised before.
    """


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator for one image, independent of how many images a split
    has, so growing a split keeps the existing images."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
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
                 seed: int, progress: Optional[Progress]) -> None:
    """Generate and write one split's images (and annotations)."""
    images, annotations, lines = [], [], []
    for index in range(num):
        wanted = classification_label(index) if kind == 'imagenet' else None
        image, labels, masks = generate_scene(
            scene_rng(seed, split, index), size, wanted)
        name = image_name(index)
        if kind == 'imagenet':
            if labels != [wanted]:
                raise RuntimeError(f'{split} image {index}: could not place '
                                   'its shape; try another seed')
            rel = classification_file(index)
            _write_bytes(root, f'{split}/{rel}', _encode('.jpg', image))
            lines.append(f'{rel} {wanted}\n')
        elif kind == 'coco':
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
    if kind == 'imagenet':
        _write_bytes(root, f'meta/{split}.txt', ''.join(lines).encode())
    if kind == 'coco':
        coco = coco_file(split, images, annotations, seed, GENERATOR_VERSION)
        _write_bytes(root, f'annotations/instances_{split}.json',
                     _dump_json(coco))


# ---------------------------------------------------------------------------
# Marker and manifest
# ---------------------------------------------------------------------------
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
        kind (str): ``'coco'``, ``'ade'`` or ``'imagenet'``.
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


def _check_arguments(kind: str, num_train: int, num_val: int,
                     size: int) -> None:
    if kind not in KINDS:
        raise SyntheticDataError(
            f'kind must be one of {KINDS}, got {kind!r}')
    if num_train < 1 or num_val < 1:
        raise SyntheticDataError('num_train and num_val must be at least 1')
    if size < 32:
        raise SyntheticDataError(
            f'size must be at least 32 pixels, got {size}')


def generate_synthetic_dataset(kind: str,
                               root: str,
                               num_train: int = 300,
                               num_val: int = 50,
                               size: int = 256,
                               seed: int = 0,
                               progress: Optional[Progress] = None) -> bool:
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
        kind (str): ``'coco'``, ``'ade'`` or ``'imagenet'``.
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

    Raises:
        SyntheticDataError: Impossible arguments.
        FileExistsError: ``root`` holds files this generator did not write.
    """
    _check_arguments(kind, num_train, num_val, size)
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
