"""The allow-list that lets torch's weights-only unpickler read Runner
checkpoints.

torch >= 2.6 loads with ``weights_only=True`` by default: its restricted
unpickler builds only tensors, plain containers and globals on an
allow-list. Checkpoints written by the mmengine ``Runner`` (``test.py``,
``--resume``, ``load_from``) hold ``HistoryBuffer`` objects and numpy arrays
in their ``message_hub``; :func:`register_safe_globals` allow-lists exactly
what they need, and nothing that could call back into arbitrary code.
"""
import pickle

import numpy as np
import torch

from ..compat import HISTORY_BUFFER_STATISTICS, history_buffer_class
from .refusals import GETATTR_REFUSED, short_repr

__all__ = ['register_safe_globals']


def _numpy_multiarray():
    # numpy 2 moved ``numpy.core`` to ``numpy._core``; importing the old name
    # only warns, so the functions are taken from the new place.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


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
    history_buffer = history_buffer_class()
    if (owner is history_buffer and type(name) is str
            and name in HISTORY_BUFFER_STATISTICS):
        return getattr(history_buffer, name)
    raise pickle.UnpicklingError(
        f'{GETATTR_REFUSED} HistoryBuffer\'s statistics methods '
        f'({", ".join(HISTORY_BUFFER_STATISTICS)}); this checkpoint asks for '
        f'getattr({short_repr(owner)}, {short_repr(name)}), which could run '
        'code.')


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
    multiarray = _numpy_multiarray()
    entries = [
        history_buffer_class(),
        (_history_buffer_statistic, 'builtins.getattr'), np.ndarray, np.dtype
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
