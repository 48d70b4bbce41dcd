"""Checkpoints given by URL, downloaded into torch's hub cache and checked.

The paper configs name the released ImageNet files by their URL, as mmdet's
configs do. :func:`fetch_checkpoint` puts such a file into the same cache
that mmengine's loader reads (``<torch.hub.get_dir()>/checkpoints``) only
once it is whole: the bytes the server announced all arrived and the file
passes :func:`check_checkpoint_file`. A server that is down, answers with an
error page or breaks off mid-file therefore leaves nothing in the cache,
and the user gets one line naming the URL and the way to a local file.
"""
import os
import os.path as osp
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urlparse

import torch

from .errors import CheckpointError
from .file_checks import check_checkpoint_file

__all__ = ['CheckpointDownloadError', 'cache_path', 'fetch_checkpoint']

#: Seconds without an answer before a download is given up.
TIMEOUT_S = 60


class CheckpointDownloadError(CheckpointError):
    """A checkpoint URL could not be downloaded whole."""


def cache_path(url: str, model_dir: Optional[str] = None,
               file_name: Optional[str] = None) -> str:
    """Where :func:`fetch_checkpoint` keeps ``url``: the layout of
    ``torch.hub.load_state_dict_from_url`` and so of mmengine's loader."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, file_name or osp.basename(urlparse(url).path))


def _download(url: str, target: str) -> None:
    """Stream ``url`` into ``target``, checking the announced length."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, \
            open(target, 'wb') as f:
        announced = response.headers.get('Content-Length')
        shutil.copyfileobj(response, f, length=1 << 20)
    received = osp.getsize(target)
    if announced is not None and received != int(announced):
        raise CheckpointDownloadError(
            f'the server sent {received} of the {int(announced)} bytes it '
            'announced (the connection broke off)')


def fetch_checkpoint(url: str, model_dir: Optional[str] = None,
                     file_name: Optional[str] = None) -> str:
    """The local copy of a checkpoint URL, downloaded if not cached yet.

    Args:
        url (str): ``http://`` or ``https://`` URL of the checkpoint.
        model_dir (str, optional): Cache directory. Defaults to
            ``<torch.hub.get_dir()>/checkpoints``.
        file_name (str, optional): Name in the cache. Defaults to the URL's.

    Returns:
        str: The cached file, whole and a loadable checkpoint.

    Raises:
        CheckpointDownloadError: The server cannot be reached, answers with
            an error, or sends a damaged or incomplete file; nothing is
            left in the cache then.
    """
    cached = cache_path(url, model_dir, file_name)
    if osp.isfile(cached):
        return cached
    os.makedirs(osp.dirname(cached), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=osp.dirname(cached),
                                   prefix=osp.basename(cached) + '.',
                                   suffix='.partial')
    os.close(fd)
    try:
        _download(url, partial)
        check_checkpoint_file(partial)
        os.replace(partial, cached)
    except urllib.error.HTTPError as e:
        raise CheckpointDownloadError(
            f'cannot download {url}: the server answered HTTP {e.code} '
            f'{e.reason}') from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, 'reason', None) or e
        raise CheckpointDownloadError(
            f'cannot download {url}: {reason}') from None
    except CheckpointDownloadError as e:
        raise CheckpointDownloadError(f'cannot download {url}: {e}') from None
    except CheckpointError as e:
        raise CheckpointDownloadError(
            f'{url} gave no usable checkpoint: '
            f'{str(e).replace(partial, "the downloaded file")}') from None
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return cached
