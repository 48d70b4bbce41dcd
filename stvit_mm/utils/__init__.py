from .checkpoint import (CheckpointError, CheckpointMismatchError,
                         CheckpointNotFoundError, StandIn, StandInDict,
                         check_checkpoint_file, check_state_dict_fits,
                         load_untrusted_checkpoint,
                         register_checkpoint_loaders, register_safe_globals)
from .flops import count_macs

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'CheckpointNotFoundError',
    'StandIn', 'StandInDict', 'check_checkpoint_file', 'check_state_dict_fits',
    'count_macs',
    'load_untrusted_checkpoint', 'register_checkpoint_loaders',
    'register_safe_globals'
]
