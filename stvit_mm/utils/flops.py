"""Multiply-accumulate counting that sees every attention call.

``torch.utils.flop_counter.FlopCounterMode`` counts ``scaled_dot_product_
attention`` only when it decomposes into matmuls: the fused CPU kernel counts
as zero. Counting under the math backend makes fused and unfused attention
(ours vs mmdet's Swin) count the same way. The CPU flash-attention op that
the generation steps call directly at inference (for its log-sum-exp) is
given the same formula. Counting on the meta device runs no arithmetic, so
even Swin-B at 1280x800 takes seconds, and it follows the CPU inference path.

:func:`count_training_macs` counts a training step the same way: forward and
backward (all parameter gradients, none for the input image) in train mode,
every backward operation measured rather than estimated as twice the
forward.
"""
import copy
from typing import Sequence

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import (FlopCounterMode, register_flop_formula,
                                      sdpa_flop)

_CPU_FLASH = getattr(torch.ops.aten,
                     '_scaled_dot_product_flash_attention_for_cpu', None)
if _CPU_FLASH is not None:

    @register_flop_formula(_CPU_FLASH, get_raw=False)
    def _cpu_flash_flop(query_shape, key_shape, value_shape, *args,
                        out_shape=None, **kwargs) -> int:
        return sdpa_flop(query_shape, key_shape, value_shape)


@torch.no_grad()
def count_macs(model: torch.nn.Module, input_shape: Sequence[int],
               on_meta: bool = True) -> int:
    """Multiply-accumulates of one forward pass on an input of a given shape.

    Papers' "FLOPs" for vision backbones (fvcore, mmcv's get_flops) are
    multiply-accumulates, i.e. half of FlopCounterMode's count.

    Args:
        model (nn.Module): The model, counted as it is (call ``.eval()``
            first). It is not modified: a meta-device copy is counted.
        input_shape (Sequence[int]): Shape of its single input tensor.
        on_meta (bool): Count on a meta-device copy (no arithmetic).
            Defaults to True.

    Returns:
        int: Multiply-accumulates.
    """
    if on_meta:
        model = copy.deepcopy(model).to('meta')
        x = torch.empty(*input_shape, device='meta')
    else:
        x = torch.randn(*input_shape)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(x)
    return fc.get_total_flops() // 2


def count_training_macs(model: torch.nn.Module,
                        input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one training step's forward and backward pass
    (gradients of every parameter that requires one; the input needs none),
    counted on a meta-device copy in train mode. The loss is the sum of the
    outputs; the optimizer step is not counted.

    Args:
        model (nn.Module): The model. It is not modified.
        input_shape (Sequence[int]): Shape of its single input tensor.

    Returns:
        int: Multiply-accumulates.
    """
    model = copy.deepcopy(model).to('meta')
    model.train()  # own line: mmdet's Swin.train() returns None
    x = torch.empty(*input_shape, device='meta')
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        outs = model(x)
        outs = outs if isinstance(outs, (tuple, list)) else [outs]
        sum(o.sum() for o in outs).backward()
    return fc.get_total_flops() // 2
