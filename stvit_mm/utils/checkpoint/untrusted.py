"""Loading a checkpoint from any source without running code from it.

The load runs torch's restricted (``weights_only``) unpickler. Each foreign
global the pickle names gets an inert stand-in (``stand_ins``), added to the
allow-list for the length of the call; globals from modules that can run
code (``refusals``) are refused, for zip checkpoints before anything is
unpickled.
"""
import os
import os.path as osp
import pickle
import re

import torch

from .errors import CheckpointError
from .file_checks import check_file, foreign_globals_in_zip
from .refusals import GETATTR_REFUSED, is_dangerous, refusal
from .stand_ins import stand_in_class, swap_in_stand_in_dicts

__all__ = ['load_with_stand_ins', 'load_untrusted_checkpoint']

# torch's messages for a global outside the allow-list; each names one
# global, so a pickle with several is learnt one retry at a time.
_UNSUPPORTED_GLOBAL = re.compile(
    r'GLOBAL (\S+) was not an allowed global by default')
_BLOCKED_GLOBAL = re.compile(r'GLOBAL (\S+) whose module \S+ is blocked')
# Bound on load retries, each of which adds one stand-in.
_MAX_FOREIGN_GLOBALS = 256


def _builtins_name(name):
    # torch's error message drops the ``builtins.`` prefix.
    return name if '.' in name else f'builtins.{name}'


def load_with_stand_ins(path, map_location):
    """Loads ``path`` with stand-ins for foreign globals.

    Args:
        path (str | os.PathLike): Checkpoint file.
        map_location: As for :func:`torch.load`.

    Returns:
        tuple: The checkpoint and the sorted names that got stand-ins.

    Raises:
        CheckpointError: As :func:`load_untrusted_checkpoint`.
    """
    path = osp.expanduser(os.fspath(path))
    is_zip = check_file(path)
    names = foreign_globals_in_zip(path) if is_zip else None
    names = names or set()
    for name in sorted(names):
        if is_dangerous(name):
            raise refusal(path, name)
    dict_like = set()
    for _ in range(_MAX_FOREIGN_GLOBALS):
        created_dicts = []
        stand_ins = {
            name: stand_in_class(name, name in dict_like, created_dicts)
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
            if GETATTR_REFUSED in message:
                raise refusal(path, 'builtins.getattr') from None
            found = (
                _UNSUPPORTED_GLOBAL.search(message)
                or _BLOCKED_GLOBAL.search(message))
            if found:
                name = _builtins_name(found.group(1))
                if is_dangerous(name) or _BLOCKED_GLOBAL.search(message):
                    raise refusal(path, name) from None
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
            checkpoint = swap_in_stand_in_dicts(checkpoint, created_dicts)
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
    :func:`~stvit_mm.utils.checkpoint.register_safe_globals` load as usual.
    Any other global gets a :class:`~stvit_mm.utils.checkpoint.StandIn` (a
    :class:`~stvit_mm.utils.checkpoint.StandInDict` for ``dict``
    subclasses) that records what the pickle asked for instead of importing
    or calling the real thing; see ``StandIn`` for why this is safe.

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
        CheckpointError: The file is missing (``CheckpointNotFoundError``),
            empty, truncated or not a checkpoint, or its pickle references a
            global that could run code.
    """
    return load_with_stand_ins(path, map_location)[0]
