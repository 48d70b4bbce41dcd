"""The errors of checkpoint loading, one class per thing the user fixes."""
from ...errors import StvitMMError

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'CheckpointMismatchError'
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
