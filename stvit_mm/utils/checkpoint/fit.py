"""Refusing weights that do not fit the model they are loaded into."""
import re

from ..state_dict_diff import diff_state_dicts
from .errors import CheckpointMismatchError

__all__ = ['check_state_dict_fits']


def check_state_dict_fits(model, checkpoint, source,
                          revise_keys=((r'^module\.', ''), )):
    """Refuses weights that do not fit ``model`` exactly.

    mmengine's ``Runner.load_checkpoint`` loads with ``strict=False``: keys
    that are missing, unexpected or of another shape only produce a warning
    and the affected layers keep their random initialisation. That is right
    for fine-tuning (``load_from`` a COCO detector for another class count)
    but never for testing or resuming, where it silently evaluates or
    continues a half-initialised model.

    Args:
        model (torch.nn.Module): The model, without wrappers.
        checkpoint (dict): The loaded checkpoint: ``{'state_dict': ...}`` or
            a bare state dict, as mmengine accepts.
        source (str): What to call the checkpoint in the message (its path).
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` applied to
            the checkpoint's keys first, as ``Runner.load_checkpoint`` does
            (strips the ``module.`` of DDP-wrapped models).

    Raises:
        CheckpointMismatchError: Listing the missing, unexpected and
            mis-shaped keys. ``num_batches_tracked`` buffers may be missing,
            as mmengine allows.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'{source} holds a {type(checkpoint).__name__}, not a state dict '
            'or a checkpoint dict with a "state_dict" entry.')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(
            f'{source}: its "state_dict" entry is a '
            f'{type(state_dict).__name__}, not a dict of tensors.')
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    own = model.state_dict()
    diff = diff_state_dicts(
        own, state_dict,
        may_be_missing=[k for k in own if 'num_batches_tracked' in k])
    if diff:
        raise CheckpointMismatchError(diff.message(
            source, f'{type(model).__name__} built from this config',
            'Check that the checkpoint was trained with this config (model '
            'type, backbone size, number of classes).'))
