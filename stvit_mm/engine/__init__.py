"""Runtime pieces that make training and testing robust: checkpoints that
survive crashes and cannot run code, clear errors for unreadable images and
a cross-rank consistency check for distributed runs.

Importing this package registers them (``tools/train.py`` and
``tools/test.py`` do, and wire them into every config; see
:func:`stvit_mm.apis.safeguards.install_safeguards`).
"""
from .fileio import ATOMIC_BACKEND, AtomicLocalBackend, atomic_write
from .hooks import (AtomicCheckpointHook, CheckpointGuardHook,
                    RankConsistencyHook)
from .transforms import CheckedLoadImageFromFile, ImageLoadError

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write',
    'AtomicCheckpointHook', 'CheckpointGuardHook', 'RankConsistencyHook',
    'CheckedLoadImageFromFile', 'ImageLoadError'
]
