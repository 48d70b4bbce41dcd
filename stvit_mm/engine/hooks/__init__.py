from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_guard_hook import CheckpointGuardHook
from .rank_consistency_hook import RankConsistencyHook

__all__ = [
    'AtomicCheckpointHook', 'CheckpointGuardHook', 'RankConsistencyHook'
]
