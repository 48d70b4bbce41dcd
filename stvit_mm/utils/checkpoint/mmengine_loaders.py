"""mmengine's checkpoint loading, routed through the safe loader.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only`` for local
files (so torch >= 2.6 refuses foreign classes with a raw
``UnpicklingError``) and ``torch.hub.load_state_dict_from_url`` with
``weights_only=False`` for URLs (so a download could run code).
:func:`register_checkpoint_loaders` replaces both, so that ``load_from``,
``resume`` and ``init_cfg=dict(type='Pretrained')`` all get the protection
and the explanations of :func:`load_untrusted_checkpoint`.
"""
import hashlib
import logging
import os
import os.path as osp

import torch

from ..compat import (check_versions, rebind_mmengine_load_url,
                      register_local_checkpoint_loader)
from .download import fetch_checkpoint
from .errors import CheckpointError
from .untrusted import load_with_stand_ins

__all__ = ['load_from_local', 'load_url', 'register_checkpoint_loaders']


def _warn_stand_ins(path, names):
    if names:
        from mmengine.logging import print_log
        print_log(
            f'{path}: these globals were not imported but replaced with '
            f'inert stand-ins: {", ".join(names)}',
            logger='current',
            level=logging.WARNING)


def load_from_local(filename, map_location=None):
    """mmengine ``CheckpointLoader`` backend for local files.

    Replaces mmengine's ``load_from_local``, which calls ``torch.load`` and
    lets the user see torch's raw ``UnpicklingError``. Named like it because
    mmengine logs the backend from the function name.

    Args:
        filename (str): Local checkpoint path.
        map_location: As for :func:`torch.load`.

    Returns:
        The checkpoint.
    """
    checkpoint, names = load_with_stand_ins(filename, map_location)
    _warn_stand_ins(filename, names)
    return checkpoint


def load_url(url,
             model_dir=None,
             map_location=None,
             progress=True,
             check_hash=False,
             file_name=None):
    """Downloads a checkpoint into torch's hub cache and loads it like a local
    file.

    mmengine 0.10.7 loads URLs (``https://``, and ``torchvision://``,
    ``open-mmlab://``, ``mmcls://`` which resolve to URLs) with
    ``torch.utils.model_zoo.load_url``, i.e.
    ``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults
    to False: a downloaded checkpoint could run code. This has the same
    signature and cache layout, downloads with :func:`fetch_checkpoint`
    (nothing incomplete is ever cached) and loads through
    :func:`load_from_local`. Unlike torch's, it does not unpack zip files
    made by hand from pre-1.6 checkpoints.

    Args:
        url (str): URL of the checkpoint.
        model_dir (str, optional): Cache directory. Defaults to
            ``<torch.hub.get_dir()>/checkpoints``.
        map_location: As for :func:`torch.load`.
        progress (bool): Unused; kept for torch's signature.
        check_hash (bool): Check the file's SHA256 against the hex digits in
            its name (``name-<sha256 prefix>.ext``).
        file_name (str, optional): Cache file name. Defaults to the URL's.

    Returns:
        The checkpoint.
    """
    cached_file = fetch_checkpoint(url, model_dir, file_name)
    if check_hash:
        _check_hash(cached_file)
    return load_from_local(cached_file, map_location)


def _check_hash(path):
    """Refuse (and drop from the cache) a file whose SHA256 does not start
    with the hex digits in its name, as torch's ``check_hash`` does."""
    found = torch.hub.HASH_REGEX.search(osp.basename(path))
    if not found:
        return
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    if not digest.hexdigest().startswith(found.group(1)):
        os.remove(path)
        raise CheckpointError(
            f'{path}: SHA256 {digest.hexdigest()[:12]}... does not match '
            f'the {found.group(1)!r} in its name; the download was removed, '
            'try again.')


def register_checkpoint_loaders():
    """Routes mmengine's checkpoint loading through the safe loader.

    * Local files: :func:`load_from_local` replaces mmengine's backend for
      the empty prefix, which ``CheckpointLoader`` uses for any path no other
      scheme claims. This covers ``load_from``, ``resume``,
      ``mmengine.runner.load_checkpoint`` and ``init_cfg=dict(
      type='Pretrained')``.
    * URLs: mmengine's URL backends call the module-level name
      ``mmengine.runner.checkpoint.load_url``, not a registered scheme, so
      that name is rebound to :func:`load_url`.

    Both are private mmengine details (see :mod:`stvit_mm.utils.compat`),
    so the installed versions are checked first. Calling it again does
    nothing new.

    Raises:
        CompatError: mmengine lacks one of the names this relies on.
    """
    check_versions()
    register_local_checkpoint_loader(load_from_local)
    rebind_mmengine_load_url(load_url)
