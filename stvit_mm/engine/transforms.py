"""Image loading that names the file it could not read."""
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.registry import TRANSFORMS

__all__ = ['ImageLoadError', 'CheckedLoadImageFromFile']


class ImageLoadError(OSError):
    """An image of the dataset is missing, empty or cannot be decoded."""


# mmcv registers its transforms in mmengine's root TRANSFORMS, which mmdet's
# and mmseg's inherit; so does this one.
@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with an error that names the image.

    mmcv 2.1's loader reports an empty file as a bare OpenCV assertion
    (``!buf.empty() in function 'imdecode_'``, no file name), and an
    undecodable one through an ``assert`` (which ``python -O`` removes, so
    the ``None`` image fails later somewhere in the pipeline). This loader
    takes the same arguments and results, and raises :class:`ImageLoadError`
    naming the file and what is wrong with it, so that a corrupt or
    truncated image in a dataset of many thousands can be found and
    replaced. With ``ignore_empty=True`` such images are skipped as in mmcv
    (the transform returns ``None``; mmengine's datasets then draw another
    sample in training).

    ``tools/train.py`` and ``tools/test.py`` use it in place of every
    ``LoadImageFromFile`` of the dataset pipelines.
    """

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            if self.file_client_args is not None:
                file_client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                img_bytes = file_client.get(filename)
            else:
                img_bytes = fileio.get(
                    filename, backend_args=self.backend_args)
        except FileNotFoundError:
            return self._fail(filename, 'the file does not exist')
        except OSError as err:
            return self._fail(filename, f'it cannot be read ({err})')
        if not img_bytes:
            return self._fail(filename, 'the file is empty (0 bytes)')
        try:
            img = mmcv.imfrombytes(
                img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as err:  # cv2.error, PIL errors, ...
            img, reason = None, f'{type(err).__name__}: {err}'.strip()
        else:
            reason = None
        if img is None or img.size == 0:
            # OpenCV returns None for truncated and non-image data alike.
            return self._fail(
                filename,
                f'it cannot be decoded as an image ({len(img_bytes)} bytes, '
                f'starting with {img_bytes[:8]!r}; truncated or not an '
                f'image{"; " + reason if reason else ""})')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _fail(self, filename: str, reason: str) -> None:
        if self.ignore_empty:
            return None
        where = filename if '://' in str(filename) else osp.abspath(filename)
        raise ImageLoadError(
            f'Cannot load image {where}: {reason}. Replace the file with a '
            'good copy, or remove the image from the annotation file (or '
            'set ignore_empty=True on the LoadImageFromFile transform to '
            'skip unreadable images during training).')
