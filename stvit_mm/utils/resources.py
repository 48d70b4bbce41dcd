"""Where the configs, tools and metafile are: in a wheel or in a checkout.

A wheel carries ``configs/`` and ``tools/`` as package data under
``stvit_mm/.mim/``, as mmdet's wheel does (``setup.py`` copies them there
when it builds). Imported from a checkout (``pip install -e .`` or
``PYTHONPATH``), the package finds them beside itself instead. Paths that
users give are tried as given first, so ``configs/foo.py`` works from the
checkout's root, and a config of the package's own works from anywhere.
"""
import os.path as osp
from typing import Optional

from ..errors import ConfigError

__all__ = ['PACKAGE_DIR', 'resource_root', 'find_resource', 'tool_script',
           'relative_to_resources']

#: The ``stvit_mm`` package directory.
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def resource_root() -> Optional[str]:
    """The folder that holds ``configs/`` and ``tools/``.

    Returns:
        str | None: ``stvit_mm/.mim`` in an installed wheel, the checkout
        when the package is imported from one, or None when neither has
        them.
    """
    checkout = osp.dirname(PACKAGE_DIR)
    for root in (osp.join(PACKAGE_DIR, '.mim'), checkout):
        if (osp.isdir(osp.join(root, 'configs'))
                and osp.isdir(osp.join(root, 'tools'))):
            return root
    return None


def find_resource(path: str, what: str = 'config') -> str:
    """``path`` as given, else relative to :func:`resource_root`.

    Args:
        path (str): A file, e.g. ``'configs/cascade_stvit_r_swin_s_3x.py'``.
        what (str): What the file is, for the message.

    Returns:
        str: A path that exists.

    Raises:
        ConfigError: If the file is in neither place; the message names
            both.
    """
    if osp.isfile(path):
        return path
    root = resource_root()
    if root is not None and not osp.isabs(path):
        candidate = osp.join(root, path)
        if osp.isfile(candidate):
            return candidate
    where = (f'nor under {root}' if root is not None else
             'and stvit_mm was installed without its configs and tools '
             '(reinstall it from a checkout with `pip install .`)')
    raise ConfigError(f'{what} not found: {path} is neither a file '
                      f'relative to the current directory ({osp.abspath(".")})'
                      f' {where}')


def tool_script(*parts: str) -> str:
    """The path of one of the package's tools, e.g. ``('train.py',)``.

    Raises:
        ConfigError: If the tools are not available.
    """
    return find_resource(osp.join('tools', *parts), what='tool')


def relative_to_resources(path: str) -> str:
    """``path`` relative to :func:`resource_root` when it lies inside it
    (the form the metafile uses, ``configs/...``), else unchanged."""
    root = resource_root()
    if root is None:
        return path
    full, base = osp.realpath(path), osp.realpath(root)
    return osp.relpath(full, base) if full.startswith(base + osp.sep) else path
