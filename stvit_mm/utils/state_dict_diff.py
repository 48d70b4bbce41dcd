"""One comparison of a checkpoint's weights with a model's, and one message.

Used wherever weights must fit exactly: the backbone's ``Pretrained`` init,
the release converter's ``--config`` check and the test/resume guard.
"""
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping

__all__ = ['StateDictDiff', 'diff_state_dicts', 'short_list']


def short_list(items: List[str], limit: int = 10) -> str:
    """``a, b, c, ... (+N more)``, or ``none``."""
    if not items:
        return 'none'
    more = f', ... (+{len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


@dataclass
class StateDictDiff:
    """What keeps a state dict from loading strictly into a model.

    Attributes:
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model lacks.
        mis_shaped (list[str]): ``key (checkpoint S vs model S)``.
        num_model (int): Tensors in the model.
        num_checkpoint (int): Tensors in the checkpoint.
    """
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mis_shaped: List[str] = field(default_factory=list)
    num_model: int = 0
    num_checkpoint: int = 0

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mis_shaped)

    def message(self, source: str, target: str, hint: str = '') -> str:
        """The user-facing explanation, naming the keys.

        Args:
            source (str): What the weights are (usually the file path).
            target (str): What they were meant for (e.g. the model type).
            hint (str): What to check, appended as the last line.
        """
        lines = [
            f'{source} does not fit the {target} ({self.num_model} tensors '
            f'in the model, {self.num_checkpoint} in the checkpoint):',
            f'  missing in the checkpoint ({len(self.missing)}): '
            f'{short_list(self.missing)}',
            f'  unexpected in the checkpoint ({len(self.unexpected)}): '
            f'{short_list(self.unexpected)}',
            f'  shape mismatches ({len(self.mis_shaped)}): '
            f'{short_list(self.mis_shaped)}',
        ]
        return '\n'.join(lines + ([hint] if hint else []))


def diff_state_dicts(own: Mapping, given: Mapping,
                     may_be_missing: Iterable[str] = ()) -> StateDictDiff:
    """Compare ``given`` weights with a model's ``own`` state dict.

    Args:
        own (Mapping[str, Tensor]): ``model.state_dict()`` (meta tensors are
            fine: only names and shapes are read).
        given (Mapping[str, Tensor]): The checkpoint's weights.
        may_be_missing (Iterable[str]): Model keys the checkpoint may lack
            (e.g. ``num_batches_tracked``, or weights initialised otherwise).

    Returns:
        StateDictDiff: Empty (falsy) when every key and shape matches.
    """
    allowed = set(may_be_missing)
    missing = sorted(k for k in set(own) - set(given) if k not in allowed)
    unexpected = sorted(set(given) - set(own))
    mis_shaped = sorted(
        f'{k} (checkpoint {tuple(getattr(given[k], "shape", ()))} vs model '
        f'{tuple(own[k].shape)})' for k in set(own) & set(given)
        if tuple(getattr(given[k], 'shape', ())) != tuple(own[k].shape))
    return StateDictDiff(missing, unexpected, mis_shaped, len(own),
                         len(given))
