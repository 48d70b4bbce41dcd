"""Loading a config: the file, its library, and the command-line overrides.

The one place that knows which OpenMMLab libraries this project serves and
what must be imported before a config's model can be built.
"""
import importlib
import os.path as osp
from typing import Callable, Optional

from mmengine.config import Config

from ..errors import ConfigError

__all__ = [
    'SCOPES', 'load_config', 'get_scope', 'import_library', 'replace_types'
]

#: ``default_scope`` of the configs this project serves.
SCOPES = ('mmdet', 'mmseg', 'mmpretrain')

#: The repository root, for paths given relative to it (configs, data).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


def import_library(scope: str) -> None:
    """Import stvit_mm (registers ``STViTRSwin``, the safe checkpoint
    loading and the engine safeguards) and the models of ``scope``."""
    import stvit_mm  # noqa: F401
    importlib.import_module(f'{scope}.models')


def resolve_path(path: str) -> str:
    """``path`` as given, else relative to the repository root.

    Raises:
        ConfigError: If it is in neither place.
    """
    for candidate in (path, osp.join(REPO_ROOT, path)):
        if osp.isfile(candidate):
            return candidate
    raise ConfigError(f'config not found: {path}')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config, check its library and import what its model needs.

    Args:
        path (str): The config file (absolute, relative to the working
            directory, or relative to the repository root).
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        Config: The loaded config, overrides applied.

    Raises:
        ConfigError: If the file is missing, does not parse, or belongs to
            another library.
    """
    resolved = resolve_path(path)
    try:
        cfg = Config.fromfile(resolved)
    except Exception as e:  # syntax errors, missing _base_ files, ...
        raise ConfigError(f'cannot load config {path}: {e}') from e
    import_library(get_scope(cfg))
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
