"""Crash-safe writes of local files.

A file written in place with ``open(path, 'wb')`` is truncated first and
filled afterwards; a process killed in between, a full disk or an exception
while writing leaves a damaged file under the final name. Here the data goes
to a temporary file in the same directory, is flushed to disk, and is then
renamed over the final name. ``os.replace`` is atomic on POSIX file systems,
so readers see the old file or the complete new one, never a mixture.
"""
import os
import os.path as osp
import secrets
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

__all__ = ['ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write']

#: Name of :class:`AtomicLocalBackend` in mmengine's file-backend registry,
#: for ``backend_args=dict(backend=ATOMIC_BACKEND)``.
ATOMIC_BACKEND = 'local_atomic'

#: Suffix of the temporary files; never ``.pth``, so that nothing that looks
#: for checkpoints (``*.pth``) picks up a half-written one.
PART_SUFFIX = '.part'


def _fsync_dir(folder: str) -> None:
    # The rename itself lives in the directory; without this a power loss
    # right after os.replace may still show the old entry.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` so that it is never seen half-written.

    The temporary file ``.<name>.<random>.part`` is created next to the
    target (a rename across file systems would not be atomic) with the
    permissions ``open()`` would give, written in full, fsynced, and renamed
    over ``filepath``. On any error it is removed and the previous
    ``filepath``, if any, is untouched.

    Args:
        data (bytes): The whole file content.
        filepath (str | Path): The target path; missing parent directories
            are created.
    """
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(
        folder,
        f'.{osp.basename(filepath)}.{secrets.token_hex(4)}{PART_SUFFIX}')
    # O_EXCL: never write through a file or link someone else put there.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with crash-safe :meth:`put` and
    :meth:`put_text` (see :func:`atomic_write`); reading, listing and
    removing are inherited unchanged.

    mmengine's ``save_checkpoint`` serialises the checkpoint into memory and
    hands the bytes to ``backend.put``, so selecting this backend
    (``backend_args=dict(backend='local_atomic')``, as
    :class:`~stvit_mm.engine.AtomicCheckpointHook` does) makes every
    checkpoint write atomic.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)
