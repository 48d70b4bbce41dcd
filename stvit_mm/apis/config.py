"""Loading a config: the file, its library, and the command-line overrides.

The one place that knows which OpenMMLab libraries this project serves and
what must be imported before a config's model can be built.
"""
import importlib
from typing import Callable, Optional

from mmengine.config import Config

from ..errors import ConfigError
from ..registry import LIBRARIES, require_library
from ..utils.resources import find_resource

__all__ = [
    'SCOPES', 'load_config', 'get_scope', 'import_library', 'replace_types'
]

#: ``default_scope`` of the configs this project serves.
SCOPES = tuple(LIBRARIES)


def get_scope(cfg: Config) -> str:
    """The library a config belongs to, from its ``default_scope``.

    Raises:
        ConfigError: If it is not mmdet, mmseg or mmpretrain.
    """
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ConfigError(
            f'{cfg.filename}: default_scope is {scope!r}; this project '
            f'serves detection (mmdet), segmentation (mmseg) and ImageNet '
            "classification (mmpretrain) configs only. Inherit one of "
            "theirs (`_base_`) or set default_scope = 'mmdet' / 'mmseg' / "
            "'mmpretrain'.")
    return scope


def import_library(scope: str, purpose: Optional[str] = None) -> None:
    """Import stvit_mm (registers ``STViTRSwin``, the safe checkpoint
    loading and the engine safeguards) and the models of ``scope``.

    Raises:
        MissingLibraryError: If ``scope``'s library is not installed; the
            message names it and how to install it.
    """
    import stvit_mm  # noqa: F401
    require_library(scope, purpose or f'a {scope} config')
    importlib.import_module(f'{scope}.models')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config, check its library and import what its model needs.

    Args:
        path (str): The config file (absolute, relative to the working
            directory, or relative to the package's configs and tools,
            e.g. ``configs/cascade_stvit_r_swin_s_3x.py`` from anywhere).
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        Config: The loaded config, overrides applied.

    Raises:
        ConfigError: If the file is missing, does not parse, or belongs to
            another library.
        MissingLibraryError: If the config's library is not installed.
    """
    resolved = find_resource(path)
    try:
        cfg = Config.fromfile(resolved)
    except Exception as e:  # syntax errors, missing _base_ files, ...
        raise ConfigError(f'cannot load config {path}: {e}') from e
    import_library(get_scope(cfg), path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def replace_types(node, matches: Callable[[dict], bool], new_type) -> int:
    """Set ``type=new_type`` in place in every dict under ``node`` (a config
    or part of one: dicts, lists and tuples, nested) that ``matches``.

    Returns:
        int: How many were replaced.
    """
    count = 0
    if isinstance(node, dict):
        if matches(node):
            node['type'] = new_type
            count += 1
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return 0
    return count + sum(replace_types(child, matches, new_type)
                       for child in children)
