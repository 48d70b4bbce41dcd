"""Loading checkpoints without letting them run code.

A ``.pth`` file is a pickle, and a pickle can name any importable callable and
ask for it to be called while loading. torch >= 2.6 loads with
``weights_only=True`` by default: its restricted unpickler builds only
tensors, plain containers and globals on an allow-list, and refuses everything
else. mmengine 0.10.7 calls ``torch.load`` without the argument, so that is
what its loaders get. Two kinds of file then stop loading:

* checkpoints written by the mmengine ``Runner`` (``test.py``, ``--resume``,
  ``load_from``): their ``message_hub`` holds ``HistoryBuffer`` objects and
  numpy arrays. :func:`register_safe_globals` allow-lists exactly what they
  need.
* released third-party checkpoints whose metadata holds objects of classes we
  do not have or do not want to import (an ``argparse.Namespace`` of training
  arguments, an mmcv 1.x ``Config``, a yacs ``CfgNode``).
  :func:`load_untrusted_checkpoint` loads them with inert stand-ins.

:func:`register_checkpoint_loaders` routes mmengine's local-file and URL
loaders (``load_from``, ``resume``, ``init_cfg=dict(type='Pretrained')``)
through :func:`load_untrusted_checkpoint`, so every path gives the same
protection and the same explanations.
"""
import logging
import os
import os.path as osp
import pickle
import re
import reprlib
from collections import Counter, OrderedDict
from urllib.parse import urlparse

import numpy as np
import torch

from ..errors import StvitMMError
from .state_dict_diff import diff_state_dicts

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'CheckpointMismatchError',
    'StandIn', 'StandInDict', 'register_safe_globals',
    'load_untrusted_checkpoint', 'check_checkpoint_file',
    'check_state_dict_fits', 'register_checkpoint_loaders'
]


class CheckpointError(StvitMMError, RuntimeError):
    """A checkpoint file is missing, damaged, or unsafe to load."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist.

    Also a ``FileNotFoundError``, which mmengine's own local loader raised.
    """


class CheckpointMismatchError(CheckpointError, ValueError):
    """A checkpoint's weights do not fit the model they are loaded into.

    Also a ``ValueError``: the weights, not the file, are wrong.
    """


# ---------------------------------------------------------------------------
# Types the mmengine Runner writes into its checkpoints.
# ---------------------------------------------------------------------------


def _numpy_multiarray():
    # numpy 2 moved ``numpy.core`` to ``numpy._core``; importing the old name
    # only warns, so the functions are taken from the new place.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


# The statistics ``HistoryBuffer`` registers for itself.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_GETATTR_REFUSED = 'builtins.getattr in a checkpoint may only fetch'


def _history_buffer_statistic(owner, name):
    """Resolves the ``builtins.getattr`` calls a Runner checkpoint makes, and
    no others.

    ``HistoryBuffer.__getstate__`` saves its ``statistics_methods``
    (``HistoryBuffer.min`` and so on), which pickle writes as
    ``getattr(HistoryBuffer, 'min')``. The real ``getattr`` would let a
    checkpoint walk from any allowed object to anything reachable from it, so
    this function is registered under that name instead.

    Args:
        owner: The object the pickle asks an attribute of.
        name: The attribute name.

    Returns:
        function: ``HistoryBuffer.<name>`` for its default statistics.

    Raises:
        pickle.UnpicklingError: For any other attribute.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if (owner is HistoryBuffer and type(name) is str
            and name in _HISTORY_BUFFER_STATISTICS):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'{_GETATTR_REFUSED} HistoryBuffer\'s statistics methods '
        f'({", ".join(_HISTORY_BUFFER_STATISTICS)}); this checkpoint asks for '
        f'getattr({_short(owner)}, {_short(name)}), which could run code.')


def _runner_safe_globals():
    """Returns the allow-list entries a Runner checkpoint needs.

    Found by saving a Runner checkpoint (mmengine 0.10.7, numpy 2) and loading
    it with ``weights_only=True`` until nothing was refused. Each entry only
    builds data; none can call back into arbitrary code:

    * ``HistoryBuffer`` (``message_hub.log_scalars``): created with
      ``object.__new__``; its ``__setstate__`` stores the arrays and merges
      the saved ``statistics_methods`` into its registry. Those can only be
      objects the restricted unpickler could build, i.e. the functions below.
    * ``builtins.getattr``, mapped to :func:`_history_buffer_statistic`,
      which returns only ``HistoryBuffer.min/max/current/mean``. The real
      ``getattr`` is never allow-listed.
    * ``numpy ... _reconstruct`` and ``numpy.ndarray``: rebuild the arrays
      inside ``HistoryBuffer``. ``_reconstruct`` only accepts ndarray
      subclasses, and the only one reachable is ``ndarray`` itself; the array
      data is raw bytes, or for object arrays objects the restricted
      unpickler already built.
    * ``numpy ... scalar``: rebuilds numpy scalars from a dtype and raw bytes.
    * ``numpy.dtype`` and the concrete dtype classes: ``np.dtype('f8')`` is
      rebuilt by calling ``numpy.dtype`` and then restoring its state, and
      the unpickler checks the *concrete* class (``Float64DType``) for that
      step. Restoring a dtype's state only sets byte order and layout.

    The numpy functions are listed under both their numpy 2 names
    (``numpy._core``) and numpy 1 names (``numpy.core``): checkpoints name
    whichever module wrote them.

    Returns:
        list: Entries for :func:`torch.serialization.add_safe_globals`.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = _numpy_multiarray()
    entries = [
        HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'),
        np.ndarray, np.dtype
    ]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    # The concrete dtype classes never appear by name in a pickle (only as the
    # type of what ``numpy.dtype(...)`` returns), so only the types the Runner
    # writes are listed: float64 log values and int64 counts.
    entries += [type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    return entries


_registered = False


def register_safe_globals():
    """Allow-lists the types the mmengine Runner writes into checkpoints.

    After this, ``torch.load`` (``weights_only=True``, the default) reads
    Runner checkpoints, so ``load_from``, ``resume`` and ``test.py`` work
    without disabling the restricted unpickler. Calling it again does
    nothing. See :func:`_runner_safe_globals` for the list and why each entry
    is safe.
    """
    global _registered
    if _registered:
        return
    torch.serialization.add_safe_globals(_runner_safe_globals())
    _registered = True


# ---------------------------------------------------------------------------
# Stand-ins for classes the loader does not import.
# ---------------------------------------------------------------------------

# Modules whose callables can run code, start processes, touch files or the
# network, or compose other calls (``functools.partial``,
# ``operator.attrgetter``). A checkpoint naming any of them is refused even
# though a stand-in would never call it: no real checkpoint needs them, so the
# file is almost certainly an exploit and the user should hear so.
_DANGEROUS_MODULES = frozenset({
    'builtins', '__builtin__', 'os', 'posix', 'nt', 'sys', 'subprocess',
    'shutil', 'importlib', 'imp', 'pkgutil', 'zipimport', 'runpy', 'pickle',
    '_pickle', 'cPickle', 'copyreg', 'copy_reg', 'marshal', 'shelve', 'codecs',
    '_codecs', 'functools', '_functools', 'operator', '_operator', 'types',
    'code', 'codeop', 'inspect', 'ctypes', '_ctypes', 'io', '_io', 'tempfile',
    'socket', 'http', 'urllib', 'ftplib', 'smtplib', 'webbrowser',
    'multiprocessing', 'threading', '_thread', 'asyncio', 'signal', 'pty',
    'platform', 'pdb', 'bdb', 'timeit', 'trace', 'profile', 'cProfile',
    'doctest', 'unittest', 'gc', 'weakref', 'site', 'sysconfig', 'distutils',
    'setuptools', 'pip', 'ensurepip', 'venv', 'tarfile', 'zipfile', 'torch._C',
    'torch.ops', 'torch.hub', 'torch.jit', 'torch.package',
    'torch.serialization', 'torch.load', 'torch.utils.cpp_extension',
    'numpy.load', 'numpy.f2py', 'numpy.distutils', 'numpy.testing'
})


def _is_dangerous(name):
    """Whether the global ``name`` lies in one of ``_DANGEROUS_MODULES``."""
    parts = name.split('.')
    prefixes = ('.'.join(parts[:i]) for i in range(1, len(parts) + 1))
    return any(prefix in _DANGEROUS_MODULES for prefix in prefixes)


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80


def _short(value):
    # Stand-ins can hold large or deeply nested state; keep their repr short.
    return _repr.repr(value)


class StandIn:
    """Inert record of an object a checkpoint asked to build from a global
    that was not imported.

    Unpickling an object means calling a global: ``cls.__new__(cls, *args)``
    (pickle's NEWOBJ) or ``global(*args)`` (REDUCE), then optionally
    ``obj.__setstate__(state)`` (BUILD). A stand-in is registered under the
    foreign name instead of the real global, so all three steps run this
    class's code, which only stores ``args`` and ``state``. Nothing is
    imported and nothing of the foreign module runs.

    This is exact for objects built from a class (NEWOBJ + BUILD, or REDUCE
    on a class): ``args`` and ``state`` are what the class would have
    received. If the name was a function, the stand-in records the call
    ``qualname(*args)`` that was *not* made. Either way the result is data
    only; whether a name is a class cannot be known without importing it,
    which is exactly what this avoids. Names from modules that can run code
    (see ``_DANGEROUS_MODULES``) are refused outright instead.

    Attributes:
        qualname (str): The foreign global, e.g. ``'argparse.Namespace'``.
        args (tuple): Arguments the pickle passed when creating it.
        state: What the pickle passed to ``__setstate__``; for a plain class
            the instance ``__dict__``. ``None`` if it set none.
    """
    qualname = None

    def __new__(cls, *args):
        self = super().__new__(cls)
        self.args = args
        self.state = None
        return self

    def __init__(self, *args):
        pass  # ``__new__`` already recorded the arguments

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return (f'StandIn({self.qualname}, args={_short(self.args)}, '
                f'state={_short(self.state)})')

    def __reduce__(self):
        # Its class exists only for one load, so pickle could not find it.
        raise TypeError(
            f'A stand-in for {self.qualname} cannot be saved; drop it or '
            'save its args/state instead.')


class StandInDict(dict):
    """Inert record of an instance of a foreign ``dict`` subclass.

    Config objects of several libraries are ``dict`` subclasses (mmcv 1.x
    ``ConfigDict``, yacs ``CfgNode``, ``EasyDict``). Their items are kept as
    the items of this plain ``dict``.

    Attributes:
        qualname (str): The foreign class, e.g. ``'yacs.config.CfgNode'``.
        args (tuple): Arguments the pickle passed when creating it.
        state: Instance attributes the pickle set that are not copies of the
            items, or ``None``.
    """

    def __init__(self, qualname, args=(), state=None):
        super().__init__()
        self.qualname = qualname
        self.args = args
        self.state = state

    def __repr__(self):
        return f'StandInDict({self.qualname}, {_short(dict(self))})'


def _stand_in_class(qualname, dict_like, created_dicts):
    """Makes the class registered under ``qualname`` for one load.

    torch's restricted unpickler only adds items to objects whose type is
    exactly ``dict``, ``OrderedDict`` or ``Counter``, so the stand-in for a
    ``dict`` subclass hands out a plain ``OrderedDict``; it is recorded in
    ``created_dicts`` and turned into a :class:`StandInDict` after loading.
    """
    namespace = {'qualname': qualname, '__module__': __name__}
    if dict_like:

        def __new__(cls, *args):
            items = OrderedDict()
            created_dicts.append((items, qualname, args))
            return items

        namespace['__new__'] = __new__
    return type(f'StandIn[{qualname}]', (StandIn, ), namespace)


def _swap_in_stand_in_dicts(obj, created_dicts):
    """Replaces the ``OrderedDict``\\ s made for foreign ``dict`` subclasses
    with :class:`StandInDict`\\ s, wherever they are referenced."""
    swaps = {
        id(items): StandInDict(qualname, args)
        for items, qualname, args in created_dicts
    }
    seen = {}

    def swap(node):
        key = id(node)
        if key in swaps:
            return swaps[key]
        if key in seen:
            return seen[key]
        seen[key] = node
        kind = type(node)
        if kind in (dict, OrderedDict, Counter, StandInDict):
            for k, v in node.items():
                node[k] = swap(v)
        elif kind is list:
            node[:] = [swap(v) for v in node]
        elif kind is tuple:
            new = tuple(swap(v) for v in node)
            if any(a is not b for a, b in zip(new, node)):
                seen[key] = new
                return new
        elif isinstance(node, StandIn):
            node.args = swap(node.args)
            node.state = swap(node.state)
        return node

    for items, _, _ in created_dicts:
        record = swaps[id(items)]
        record.args = swap(record.args)
        record.update((k, swap(v)) for k, v in items.items())
        # Instance attributes set by the pickle's BUILD step; classes such as
        # addict's ``Dict`` pickle the items themselves as their state.
        attrs = {
            k: swap(v)
            for k, v in vars(items).items()
            if not (k in items and items[k] is v)
        }
        record.state = attrs or None
    return swap(obj)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_UNSUPPORTED_GLOBAL = re.compile(
    r'GLOBAL (\S+) was not an allowed global by default')
_BLOCKED_GLOBAL = re.compile(r'GLOBAL (\S+) whose module \S+ is blocked')
# Bound on load retries, each of which adds one stand-in.
_MAX_FOREIGN_GLOBALS = 256


def _refusal(path, name):
    return CheckpointError(
        f'{path} is not a plain checkpoint: its pickle references {name}, '
        'which could run code when loaded; refusing to load it.')


def _check_file(path):
    """Raises :class:`CheckpointError` for files that cannot be a
    checkpoint, before any unpickling."""
    if not osp.exists(path):
        raise CheckpointNotFoundError(
            f'Checkpoint {path} does not exist (no such file).')
    if osp.isdir(path):
        raise CheckpointError(
            f'Checkpoint {path} is a directory, not a checkpoint file.')
    if osp.getsize(path) == 0:
        raise CheckpointError(
            f'{path} is empty (0 bytes), so it is not a checkpoint: the '
            'download or copy that wrote it probably failed. Download it '
            'again.')
    with open(path, 'rb') as f:
        head = f.read(512)
    is_zip = head.startswith(b'PK\x03\x04')  # torch.save since torch 1.6
    is_pickle = head.startswith(b'\x80')  # legacy torch.save
    is_tar = head[257:262] == b'ustar'  # torch.save before 0.4
    if is_zip or is_pickle or is_tar:
        return is_zip
    advice = 'Download it again.'
    if head.startswith(b'version https://git-lfs'):
        advice = ('It is a Git LFS pointer: fetch the real file with '
                  '`git lfs pull`.')
    elif head.lstrip().lower().startswith((b'<!doctype html', b'<html')):
        advice = ('It is an HTML page: the download saved an error or login '
                  'page. Download it again.')
    raise CheckpointError(
        f'{path} is not a PyTorch checkpoint: it starts with '
        f'{head[:16]!r} instead of a zip archive or a pickle. {advice}')


def _foreign_globals_in_zip(path):
    """Lists the globals of a zip checkpoint that are not allow-listed,
    without unpickling it. Returns None if it cannot be listed statically."""
    try:
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except ValueError as err:  # a TorchScript archive
        raise CheckpointError(
            f'{path} is not a checkpoint but a TorchScript archive ({err}). '
            'TorchScript archives hold code; load it with torch.jit.load '
            'only if you trust its source.') from None
    except (pickle.UnpicklingError, EOFError):
        # Opcodes the static scan does not know; the load below still
        # reports each global one at a time.
        return None
    except (RuntimeError, OSError) as err:
        raise CheckpointError(
            f'{path} is truncated or corrupt: it starts like a zip archive '
            f'but cannot be read as one ({err}). Download it again.') from None


def _builtins_name(name):
    # torch's error message drops the ``builtins.`` prefix.
    return name if '.' in name else f'builtins.{name}'


def _load(path, map_location):
    """Loads ``path`` with stand-ins for foreign globals.

    Returns:
        tuple: The checkpoint and the sorted names that got stand-ins.
    """
    path = osp.expanduser(os.fspath(path))
    is_zip = _check_file(path)
    names = _foreign_globals_in_zip(path) if is_zip else None
    names = names or set()
    for name in sorted(names):
        if _is_dangerous(name):
            raise _refusal(path, name)
    dict_like = set()
    for _ in range(_MAX_FOREIGN_GLOBALS):
        created_dicts = []
        stand_ins = {
            name: _stand_in_class(name, name in dict_like, created_dicts)
            for name in names
        }
        entries = [(cls, name) for name, cls in stand_ins.items()]
        # The allow-list is process-wide: a load in another thread meanwhile
        # may also get stand-ins, which are just as inert there.
        try:
            with torch.serialization.safe_globals(entries):
                checkpoint = torch.load(
                    path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            message = str(err)
            if _GETATTR_REFUSED in message:
                raise _refusal(path, 'builtins.getattr') from None
            found = (
                _UNSUPPORTED_GLOBAL.search(message)
                or _BLOCKED_GLOBAL.search(message))
            if found:
                name = _builtins_name(found.group(1))
                if _is_dangerous(name) or _BLOCKED_GLOBAL.search(message):
                    raise _refusal(path, name) from None
                if name not in names:
                    names.add(name)
                    continue
            if 'Can only SETITEM' in message:
                # Items were added to a stand-in: the foreign class is a
                # dict subclass. Retry with a dict-like stand-in for it.
                name = next(
                    (n for n, cls in stand_ins.items() if str(cls) in message),
                    None)
                if name is not None and name not in dict_like:
                    dict_like.add(name)
                    continue
            raise CheckpointError(
                f'{path} cannot be loaded without running code: its pickle '
                'uses something a weights-only load does not support. '
                'Refusing rather than unpickling it in full. Details: '
                f'{message.strip()}') from None
        except CheckpointError:
            raise
        except Exception as err:
            detail = f'{type(err).__name__}: {err}' if str(err) else (
                f'{type(err).__name__}: the data ends early')
            raise CheckpointError(
                f'{path} could not be read as a checkpoint ({detail}). It is '
                'probably truncated or corrupt: download it again.') from None
        if created_dicts:
            checkpoint = _swap_in_stand_in_dicts(checkpoint, created_dicts)
        return checkpoint, sorted(names)
    raise CheckpointError(
        f'{path} references more than {_MAX_FOREIGN_GLOBALS} foreign '
        'globals; refusing to load it.')


def load_untrusted_checkpoint(path, map_location='cpu'):
    """Loads a checkpoint from any source without running code from it.

    For released third-party checkpoints, whose metadata often holds objects
    of classes this environment does not have (``argparse.Namespace`` of
    training arguments, an mmcv 1.x ``Config``, a yacs ``CfgNode``). Tensors,
    plain containers and the types allowed by torch and by
    :func:`register_safe_globals` load as usual. Any other global gets a
    :class:`StandIn` (a :class:`StandInDict` for ``dict`` subclasses) that
    records what the pickle asked for instead of importing or calling the
    real thing; see :class:`StandIn` for why this is safe.

    The load runs torch's restricted (``weights_only``) unpickler; the only
    globals added to its allow-list are the stand-ins, for the length of the
    call. Globals from modules that can run code (``builtins``, ``os``,
    ``subprocess``, ``functools``, ...) are refused, and for zip checkpoints
    this is decided from a static scan before anything is unpickled.

    Args:
        path (str | os.PathLike): Checkpoint file.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The checkpoint, usually a dict.

    Raises:
        CheckpointError: The file is missing (:class:`CheckpointNotFoundError`),
            empty, truncated or not a checkpoint, or its pickle references a
            global that could run code.
    """
    return _load(path, map_location)[0]


def check_checkpoint_file(path):
    """Checks a local checkpoint file as far as possible without unpickling.

    Meant for tools that want to fail within seconds, before building a
    model and datasets, rather than when the Runner finally loads the file:
    the file must exist, look like a ``torch.save`` output (not empty, an
    HTML page or a Git LFS pointer), and, for zip checkpoints (every
    ``torch.save`` since torch 1.6), have a readable archive whose pickle
    names no global that could run code. Legacy (pre-zip) pickles can only
    be judged by loading them, which :func:`load_untrusted_checkpoint` does
    safely.

    Args:
        path (str | os.PathLike): Local checkpoint file.

    Raises:
        CheckpointError: With the same messages as
            :func:`load_untrusted_checkpoint`.
    """
    path = osp.expanduser(os.fspath(path))
    if _check_file(path):
        for name in sorted(_foreign_globals_in_zip(path) or ()):
            if _is_dangerous(name):
                raise _refusal(path, name)


def check_state_dict_fits(model, checkpoint, source,
                          revise_keys=((r'^module\.', ''), )):
    """Refuses weights that do not fit ``model`` exactly.

    mmengine's ``Runner.load_checkpoint`` loads with ``strict=False``: keys
    that are missing, unexpected or of another shape only produce a warning
    and the affected layers keep their random initialisation. That is right
    for fine-tuning (``load_from`` a COCO detector for another class count)
    but never for testing or resuming, where it silently evaluates or
    continues a half-initialised model.

    Args:
        model (torch.nn.Module): The model, without wrappers.
        checkpoint (dict): The loaded checkpoint: ``{'state_dict': ...}`` or
            a bare state dict, as mmengine accepts.
        source (str): What to call the checkpoint in the message (its path).
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` applied to
            the checkpoint's keys first, as ``Runner.load_checkpoint`` does
            (strips the ``module.`` of DDP-wrapped models).

    Raises:
        CheckpointMismatchError: Listing the missing, unexpected and
            mis-shaped keys. ``num_batches_tracked`` buffers may be missing,
            as mmengine allows.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{source} holds a {type(checkpoint).__name__}, not a state dict '
            'or a checkpoint dict with a "state_dict" entry.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(
            f'{source}: its "state_dict" entry is a '
            f'{type(state_dict).__name__}, not a dict of tensors.')
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    own = model.state_dict()
    diff = diff_state_dicts(
        own, state_dict,
        may_be_missing=[k for k in own if 'num_batches_tracked' in k])
    if diff:
        raise CheckpointMismatchError(diff.message(
            source, f'{type(model).__name__} built from this config',
            'Check that the checkpoint was trained with this config (model '
            'type, backbone size, number of classes).'))


# ---------------------------------------------------------------------------
# mmengine integration
# ---------------------------------------------------------------------------


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
    checkpoint, names = _load(filename, map_location)
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
    signature and cache layout and loads through :func:`load_from_local`.
    Unlike torch's, it does not unpack zip files made by hand from pre-1.6
    checkpoints.

    Args:
        url (str): URL of the checkpoint.
        model_dir (str, optional): Cache directory. Defaults to
            ``<torch.hub.get_dir()>/checkpoints``.
        map_location: As for :func:`torch.load`.
        progress (bool): Show a download progress bar.
        check_hash (bool): Check the file's SHA256 against the hex digits in
            its name (``name-<sha256 prefix>.ext``).
        file_name (str, optional): Cache file name. Defaults to the URL's.

    Returns:
        The checkpoint.
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    file_name = file_name or osp.basename(urlparse(url).path)
    cached_file = osp.join(model_dir, file_name)
    if not osp.exists(cached_file):
        hash_prefix = None
        if check_hash:
            found = torch.hub.HASH_REGEX.search(file_name)
            hash_prefix = found.group(1) if found else None
        torch.hub.download_url_to_file(
            url, cached_file, hash_prefix, progress=progress)
    return load_from_local(cached_file, map_location)


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

    Calling it again does nothing new.
    """
    from mmengine.runner import checkpoint as mmengine_checkpoint

    mmengine_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    if not hasattr(mmengine_checkpoint, 'load_url'):
        raise ImportError(
            'mmengine.runner.checkpoint.load_url no longer exists; URL '
            'checkpoints would bypass the safe loader. Update '
            'stvit_mm.utils.checkpoint.register_checkpoint_loaders for this '
            'mmengine version.')
    mmengine_checkpoint.load_url = load_url
