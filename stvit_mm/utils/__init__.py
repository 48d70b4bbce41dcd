from .checkpoint import (CheckpointError, CheckpointNotFoundError, StandIn,
                         StandInDict, load_untrusted_checkpoint,
                         register_checkpoint_loaders, register_safe_globals)

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'StandIn', 'StandInDict',
    'load_untrusted_checkpoint', 'register_checkpoint_loaders',
    'register_safe_globals'
]
