"""The paper's numbers per config, read from ``configs/metafile.yml``.

The metafile (OpenMMLab layout: ``Collections`` and ``Models``) lists the
paper's configs and their Swin baselines, each with its config path, its
metadata (backbone FLOPs at the paper's input size, training data,
schedule), the results the paper reports and the released weights. Tools
that print the paper's figures read them from there rather than holding
them in code.

Example:
    >>> from stvit_mm.utils.metafile import paper_numbers
    >>> paper_numbers('configs/cascade_stvit_r_swin_s_3x.py')['box AP']
    51.8
"""
from pathlib import Path
from typing import Dict, Optional, Union

import yaml

from stvit_mm.errors import ConfigError
from stvit_mm.utils.resources import PACKAGE_DIR, resource_root

__all__ = [
    'BACKBONE_GFLOPS', 'DEFAULT_METAFILE', 'load_metafile', 'paper_numbers'
]

#: ``configs/metafile.yml`` of the package (:mod:`.resources`: in the wheel's
#: ``.mim`` folder or the checkout).
DEFAULT_METAFILE = (Path(resource_root() or PACKAGE_DIR) / 'configs' /
                    'metafile.yml')
#: The ``Metadata`` entry (and the :func:`paper_numbers` key) holding the
#: backbone's GFLOPs (GMACs, the papers' unit) at the paper's input size.
BACKBONE_GFLOPS = 'Backbone FLOPs (G)'

PathLike = Union[str, Path]


def load_metafile(path: Optional[PathLike] = None) -> Dict[str, dict]:
    """Read a metafile's models, keyed by config path.

    Args:
        path (str | Path, optional): The metafile. Defaults to
            ``configs/metafile.yml`` of this repository
            (:data:`DEFAULT_METAFILE`).

    Returns:
        dict: Each entry of ``Models`` as written (``Name``, ``Config``,
        ``Metadata``, ``Results``, ``Weights``, ...), keyed by its
        ``Config`` as written there, i.e. relative to the repository root
        (``'configs/cascade_stvit_r_swin_s_3x.py'``).

    Raises:
        ConfigError: The file is missing or is not a metafile: no
            ``Models`` list, a model without ``Config``, or two models
            with the same config.
    """
    path = Path(path) if path is not None else DEFAULT_METAFILE
    if not path.is_file():
        raise ConfigError(
            f'metafile {path} not found; pass the path of configs/'
            'metafile.yml')
    with open(path, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    models = data.get('Models') if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ConfigError(f'metafile {path} has no `Models` list')
    by_config = {}
    for i, model in enumerate(models):
        config = model.get('Config') if isinstance(model, dict) else None
        if not isinstance(config, str):
            raise ConfigError(
                f'metafile {path}: model {i} ({model!r:.60}) has no '
                '`Config`')
        if config in by_config:
            raise ConfigError(f'metafile {path}: {config} is listed twice')
        by_config[config] = model
    return by_config


def paper_numbers(config_path: PathLike,
                  metafile: Optional[PathLike] = None) -> Dict[str, float]:
    """The numbers the paper reports for a config.

    Args:
        config_path (str | Path): The config, as the metafile writes it
            (``'configs/upernet_swin_s_160k_ade20k.py'``), or any path to
            the same file (absolute, or relative to the working directory).
        metafile (str | Path, optional): The metafile. Defaults to this
            repository's ``configs/metafile.yml``.

    Returns:
        dict: The metrics of all its ``Results`` (``'box AP'``,
        ``'box AP50'``, ..., ``'mask APs'``; ``'mIoU(ms+flip)'``) and,
        under :data:`BACKBONE_GFLOPS`, the backbone's GFLOPs at the paper's
        input size (``Metadata['FLOPs Input Size']``).

    Raises:
        ConfigError: The metafile cannot be read (see
            :func:`load_metafile`) or does not list the config.
    """
    metafile = Path(metafile) if metafile is not None else DEFAULT_METAFILE
    models = load_metafile(metafile)
    model = models[_config_key(config_path, models, metafile)]
    numbers = {}
    gflops = (model.get('Metadata') or {}).get(BACKBONE_GFLOPS)
    if gflops is not None:
        numbers[BACKBONE_GFLOPS] = gflops
    for result in model.get('Results') or []:
        numbers.update(result.get('Metrics') or {})
    return numbers


def _config_key(config_path: PathLike, models: Dict[str, dict],
                metafile: Path) -> str:
    """The metafile's key for a config path given in any form."""
    path = Path(config_path)
    if path.as_posix() in models:
        return path.as_posix()
    # Config paths in the metafile are relative to the repository root,
    # the folder above the metafile's configs/.
    root = metafile.resolve().parent.parent
    try:
        key = path.resolve().relative_to(root).as_posix()
    except ValueError:
        key = None
    if key in models:
        return key
    raise ConfigError(
        f'{config_path} is not in the metafile {metafile}; it lists '
        f'{", ".join(sorted(models))}')
