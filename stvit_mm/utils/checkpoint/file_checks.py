"""Judging a checkpoint file before unpickling it.

Tools call :func:`check_checkpoint_file` to fail within seconds, before
building a model and datasets; the safe loader runs the same checks first,
so both report a missing, empty, truncated or foreign file alike.
"""
import os
import os.path as osp
import pickle

import torch

from .errors import CheckpointError, CheckpointNotFoundError
from .refusals import is_dangerous, refusal

__all__ = ['check_file', 'foreign_globals_in_zip', 'check_checkpoint_file']


def check_file(path):
    """Raises :class:`CheckpointError` for files that cannot be a
    checkpoint, before any unpickling.

    Args:
        path (str): Local path, already expanded.

    Returns:
        bool: Whether it is a zip checkpoint (every ``torch.save`` since
        torch 1.6), whose globals can be listed without unpickling.
    """
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


def foreign_globals_in_zip(path):
    """Lists the globals of a zip checkpoint that are not allow-listed,
    without unpickling it.

    Args:
        path (str): A file :func:`check_file` found to be a zip.

    Returns:
        set[str] | None: The names, or None if they cannot be listed
        statically.

    Raises:
        CheckpointError: A TorchScript archive, or an unreadable zip.
    """
    try:
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except ValueError as err:  # a TorchScript archive
        raise CheckpointError(
            f'{path} is not a checkpoint but a TorchScript archive ({err}). '
            'TorchScript archives hold code; load it with torch.jit.load '
            'only if you trust its source.') from None
    except (pickle.UnpicklingError, EOFError):
        # Opcodes the static scan does not know; the load still reports
        # each global one at a time.
        return None
    except (RuntimeError, OSError) as err:
        raise CheckpointError(
            f'{path} is truncated or corrupt: it starts like a zip archive '
            f'but cannot be read as one ({err}). Download it again.') from None


def check_checkpoint_file(path):
    """Checks a local checkpoint file as far as possible without unpickling.

    Meant for tools that want to fail within seconds, before building a
    model and datasets, rather than when the Runner finally loads the file:
    the file must exist, look like a ``torch.save`` output (not empty, an
    HTML page or a Git LFS pointer), and, for zip checkpoints (every
    ``torch.save`` since torch 1.6), have a readable archive whose pickle
    names no global that could run code. Legacy (pre-zip) pickles can only
    be judged by loading them, which
    :func:`~stvit_mm.utils.checkpoint.load_untrusted_checkpoint` does
    safely.

    Args:
        path (str | os.PathLike): Local checkpoint file.

    Raises:
        CheckpointError: With the same messages as
            :func:`~stvit_mm.utils.checkpoint.load_untrusted_checkpoint`.
    """
    path = osp.expanduser(os.fspath(path))
    if check_file(path):
        for name in sorted(foreign_globals_in_zip(path) or ()):
            if is_dangerous(name):
                raise refusal(path, name)
