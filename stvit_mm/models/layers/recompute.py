"""Recomputing activations in the backward pass (torch's "activation
checkpointing", ``with_cp`` in OpenMMLab configs), only where it saves
memory. Not to be confused with weight checkpoints (files).
"""
from typing import Callable

import torch
import torch.utils.checkpoint as cp


def maybe_recompute(fn: Callable, enabled: bool, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``, recomputing its activations in the
    backward pass instead of storing them when ``enabled`` and autograd is
    recording (non-reentrant, so inputs that need no gradient, such as the
    output of a frozen stem, are fine).

    Args:
        fn (Callable): The module or function to run.
        enabled (bool): Whether to checkpoint.

    Returns:
        Whatever ``fn`` returns.
    """
    if enabled and torch.is_grad_enabled():
        return cp.checkpoint(fn, *args, use_reentrant=False, **kwargs)
    return fn(*args, **kwargs)
