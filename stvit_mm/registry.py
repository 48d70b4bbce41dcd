"""Registration of stvit_mm modules into the OpenMMLab libraries' registries.

Configs refer to the backbone by a bare ``type='STViTRSwin'`` under
``default_scope='mmdet'``, ``'mmseg'`` or ``'mmpretrain'``. A child registry
only searches itself and its parents, never its siblings, so the class is
registered into each library's ``MODELS`` explicitly.

Any one of the three libraries is enough: a detection user's environment
often has mmdet alone. A library that is not installed is skipped, and what
needs it later (a config of its scope, a tool) is refused by
:func:`require_library` with the command that installs it.
"""
import importlib
import warnings
from typing import Dict, List, Tuple

from .errors import StvitMMError

__all__ = [
    'LIBRARIES', 'MissingLibraryError', 'available_libraries',
    'require_library', 'register_model'
]

#: ``default_scope`` -> (pip distribution, requirement range tested,
#: ``pip install`` extra of stvit_mm that brings it).
LIBRARIES: Dict[str, Tuple[str, str, str]] = {
    'mmdet': ('mmdet', 'mmdet>=3.3.0,<3.4.0', 'det'),
    'mmseg': ('mmsegmentation', 'mmsegmentation>=1.2.2,<1.3.0', 'seg'),
    'mmpretrain': ('mmpretrain', 'mmpretrain>=1.2.0,<1.3.0', 'cls'),
}

#: Libraries that are installed but failed to import, with the reason.
_BROKEN: Dict[str, str] = {}


class MissingLibraryError(StvitMMError, ImportError):
    """An OpenMMLab library that a config or tool needs is not installed."""


def _import_registry(scope: str):
    """The library's ``MODELS``, or None when the library is not installed.

    A library that is installed but does not import (a broken mmcv, a
    dependency of its own missing) is remembered with its error and warned
    about, so that it is not mistaken for an absent one.
    """
    try:
        # mmpretrain.registry imports without torchvision (its models do not).
        return importlib.import_module(f'{scope}.registry').MODELS
    except ModuleNotFoundError as e:
        if (e.name or '').split('.')[0] == scope:
            return None  # not installed
        reason = e
    except ImportError as e:
        reason = e
    _BROKEN[scope] = f'{type(reason).__name__}: {reason}'
    warnings.warn(f'stvit_mm: {scope} is installed but does not import '
                  f'({_BROKEN[scope]}); STViTRSwin is not registered for '
                  f'{scope} configs.')
    return None


def _registries() -> Dict[str, object]:
    found = {}
    for scope in LIBRARIES:
        registry = _import_registry(scope)
        if registry is not None:
            found[scope] = registry
    return found


_MODEL_REGISTRIES = _registries()


def available_libraries() -> List[str]:
    """The scopes (``'mmdet'``, ``'mmseg'``, ``'mmpretrain'``) whose library
    imported, i.e. where ``type='STViTRSwin'`` is registered."""
    return list(_MODEL_REGISTRIES)


def install_hint(scope: str) -> str:
    """The command that installs the library of ``scope``."""
    _, requirement, extra = LIBRARIES[scope]
    return (f'mim install "{requirement}" (or pip install '
            f'"stvit-mm[{extra}]" from the stvit-mm checkout)')


def require_library(scope: str, purpose: str) -> None:
    """Refuse, naming the library and how to install it, if ``scope``'s
    library is unavailable.

    Args:
        scope (str): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
        purpose (str): What needs it, e.g. ``'configs/foo.py'``.

    Raises:
        MissingLibraryError: If the library is not installed or does not
            import.
    """
    if scope in _MODEL_REGISTRIES:
        return
    package = LIBRARIES[scope][0]
    if scope in _BROKEN:
        raise MissingLibraryError(
            f'{purpose} needs {package}, which is installed but does not '
            f'import ({_BROKEN[scope]}); repair or reinstall it: '
            f'{install_hint(scope)}.')
    raise MissingLibraryError(
        f'{purpose} needs {package}, which is not installed: '
        f'{install_hint(scope)}.')


def register_model(cls):
    """Class decorator: register ``cls`` under its class name in the
    ``MODELS`` registry of every installed library (mmdet, mmseg,
    mmpretrain).

    Args:
        cls (type): The module class.

    Returns:
        type: ``cls`` itself.
    """
    if not _MODEL_REGISTRIES:
        raise MissingLibraryError(
            'stvit_mm needs at least one of mmdet, mmsegmentation and '
            'mmpretrain: ' + '; '.join(
                install_hint(scope) for scope in LIBRARIES) + '.')
    for registry in _MODEL_REGISTRIES.values():
        registry.register_module(module=cls)
    return cls
