"""Every private mmengine / mmcv API stvit_mm relies on, in one place.

mmengine gives no public way to do some of what stvit_mm needs (route URL
checkpoints through a safe loader, write checkpoints atomically, name the
file a Runner loads), so stvit_mm reaches into module globals, private
methods and private attributes. Such names can change in any release
without notice. Keeping every one of them here means:

* an upgrade has one file to review, and this docstring lists what to check;
* a missing name is reported, when stvit_mm is imported or the name is
  first used, as a :class:`CompatError` naming the installed and the tested
  version, instead of as an ``AttributeError`` deep inside a run, or not at
  all (an override of a method that no longer exists is silently never
  called);
* running another version than the tested one logs a warning
  (:func:`check_versions`).

The names, and what relies on them:

* ``mmengine.runner.checkpoint.load_url``: the module global that
  ``CheckpointLoader``'s URL backends call; rebound by
  :func:`rebind_mmengine_load_url` so downloads load weights-only.
* ``CheckpointLoader.register_scheme`` with the prefix ``''``: the backend
  for any path no other scheme claims, i.e. local files
  (:func:`register_local_checkpoint_loader`).
* ``mmengine.logging.history_buffer.HistoryBuffer`` and its statistics
  methods ``min``/``max``/``current``/``mean``: the module path and the
  methods are written *by name* into every Runner checkpoint, and the safe
  unpickler allow-lists exactly them (:func:`history_buffer_class`).
* ``CheckpointHook._save_checkpoint_with_step``, overridden by
  ``AtomicCheckpointHook`` together with the attributes it reads
  (``keep_ckpt_ids``, ``filename_tmpl``, ``file_backend``, ``last_ckpt``);
  checked by :func:`checkpoint_hook_save_method`.
* ``Runner._load_from`` and ``Runner._resume``: which checkpoint the Runner
  loads, for ``CheckpointGuardHook``'s messages
  (:func:`runner_checkpoint_source`).

mmcv 2.1's ``LoadImageFromFile`` attributes, which
``stvit_mm.engine.transforms`` reads, are public and not listed here.
"""
import importlib
import warnings
from typing import Any, Callable, Optional

from ..errors import StvitMMError

__all__ = [
    'TESTED_VERSIONS', 'CompatError', 'check_versions', 'require',
    'rebind_mmengine_load_url', 'register_local_checkpoint_loader',
    'history_buffer_class', 'HISTORY_BUFFER_STATISTICS',
    'checkpoint_hook_save_method', 'runner_checkpoint_source'
]

#: The versions pinned in requirements.txt, the only ones tested. Keep the
#: two in step (tests/test_utils/test_compat.py checks that they are).
TESTED_VERSIONS = {'mmengine': '0.10.7', 'mmcv': '2.1.0'}

#: The statistics ``HistoryBuffer`` registers for itself, which its pickled
#: state names.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class CompatError(StvitMMError, ImportError):
    """The installed mmengine or mmcv lacks a private name stvit_mm uses.

    Also an ``ImportError``: like a missing module, it means the
    environment does not match what stvit_mm was written for.
    """


def _installed(package: str) -> str:
    module = importlib.import_module(package)
    return getattr(module, '__version__', 'unknown')


def check_versions(packages=('mmengine', 'mmcv')) -> None:
    """Warns when an installed version differs from :data:`TESTED_VERSIONS`.

    Only a warning: the private names stvit_mm needs may well still exist,
    and :func:`require` refuses loudly the moment one does not.

    Args:
        packages (Sequence[str]): Which packages to check.
    """
    for package in packages:
        installed, tested = _installed(package), TESTED_VERSIONS[package]
        if installed != tested:
            warnings.warn(
                f'stvit_mm is tested with {package} {tested} (pinned in '
                f'requirements.txt) but {package} {installed} is installed; '
                'private APIs it relies on (see stvit_mm/utils/compat.py) '
                'may behave differently.',
                stacklevel=2)


def require(owner: Any, name: str, package: str, purpose: str) -> Any:
    """Returns ``owner.<name>``, or raises a :class:`CompatError` that says
    what is missing, what it is needed for and which version works.

    Args:
        owner: The module or class expected to have ``name``.
        name (str): The attribute.
        package (str): ``'mmengine'`` or ``'mmcv'``, for the message.
        purpose (str): What stvit_mm needs it for, completing "needed to".

    Returns:
        The attribute.

    Raises:
        CompatError: If ``owner`` has no attribute ``name``.
    """
    try:
        return getattr(owner, name)
    except AttributeError:
        where = getattr(owner, '__qualname__', None) or owner.__name__
        module = getattr(owner, '__module__', None)
        if module and module != where:
            where = f'{module}.{where}'
        raise CompatError(
            f'{where}.{name} does not exist in {package} '
            f'{_installed(package)}, but stvit_mm needs it to {purpose}. '
            f'stvit_mm is tested with {package} '
            f'{TESTED_VERSIONS[package]} (requirements.txt): install that '
            'version (`make install`), or adapt stvit_mm/utils/compat.py '
            'to this one.') from None


def _mmengine_checkpoint_module():
    from mmengine.runner import checkpoint
    return checkpoint


def rebind_mmengine_load_url(load_url: Callable) -> None:
    """Makes mmengine's URL checkpoint backends download with ``load_url``.

    ``load_from_http``, ``load_from_torchvision``, ``load_from_openmmlab``
    and ``load_from_mmpretrain`` call the module-level name
    ``mmengine.runner.checkpoint.load_url``, not a registered scheme, so
    that name is what has to be replaced.

    Args:
        load_url (callable): Same signature as
            ``torch.hub.load_state_dict_from_url``.
    """
    module = _mmengine_checkpoint_module()
    require(module, 'load_url', 'mmengine',
            'route URL checkpoints through the safe loader')
    module.load_url = load_url


def register_local_checkpoint_loader(loader: Callable) -> None:
    """Makes ``loader`` mmengine's backend for local checkpoint files.

    ``CheckpointLoader`` matches the longest registered prefix, and the
    empty prefix is its fallback for every path no other scheme claims.

    Args:
        loader (callable): ``loader(filename, map_location)``.
    """
    loader_cls = require(_mmengine_checkpoint_module(), 'CheckpointLoader',
                         'mmengine', 'load local checkpoints safely')
    register = require(loader_cls, 'register_scheme', 'mmengine',
                       'load local checkpoints safely')
    register(prefixes='', loader=loader, force=True)


def history_buffer_class() -> type:
    """``HistoryBuffer``, under the module path Runner checkpoints name.

    Returns:
        type: ``mmengine.logging.history_buffer.HistoryBuffer``, checked to
        have the statistics methods its pickled state refers to.
    """
    purpose = 'load the message hub of Runner checkpoints weights-only'
    try:
        module = importlib.import_module('mmengine.logging.history_buffer')
    except ImportError:
        raise CompatError(
            'mmengine.logging.history_buffer does not exist in mmengine '
            f'{_installed("mmengine")}, but stvit_mm needs it to {purpose}. '
            f'stvit_mm is tested with mmengine {TESTED_VERSIONS["mmengine"]}'
            ' (requirements.txt).') from None
    cls = require(module, 'HistoryBuffer', 'mmengine', purpose)
    for name in HISTORY_BUFFER_STATISTICS:
        require(cls, name, 'mmengine', purpose)
    return cls


def checkpoint_hook_save_method() -> str:
    """The name of the ``CheckpointHook`` method that saves one checkpoint.

    ``AtomicCheckpointHook`` overrides it; were it renamed, the override
    would silently never run and checkpoints would be written in place
    again, so its absence is an error.

    Returns:
        str: ``'_save_checkpoint_with_step'``.
    """
    from mmengine.hooks import CheckpointHook
    name = '_save_checkpoint_with_step'
    require(CheckpointHook, name, 'mmengine',
            'write checkpoints atomically (AtomicCheckpointHook)')
    return name


def runner_checkpoint_source(runner) -> Optional[str]:
    """The checkpoint file a Runner is loading, if it can be told.

    ``Runner.load_or_resume`` loads ``runner._load_from``, or with
    ``resume=True`` and no ``load_from`` the work directory's latest
    checkpoint. Only a message depends on this, so a Runner without these
    attributes gives ``None`` rather than an error.

    Args:
        runner: The mmengine ``Runner``.

    Returns:
        str | None: The path, or None if unknown.
    """
    from mmengine.runner.checkpoint import find_latest_checkpoint
    load_from = getattr(runner, '_load_from', None)
    if load_from is None and getattr(runner, '_resume', False):
        load_from = find_latest_checkpoint(runner.work_dir)
    return load_from
