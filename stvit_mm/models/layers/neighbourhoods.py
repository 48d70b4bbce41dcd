"""Cutting each window's key/value neighbourhood out of tokens projected
once (the gathered path: CUDA, attention dropout, the gathered recovery)."""
from typing import Tuple

import torch
from torch import Tensor

from .capture import cast


def gather_neighbourhoods(tokens: Tensor, fill: Tensor, index: Tensor,
                          num_heads: int) -> Tuple[Tensor, Tensor]:
    """Cut the overlapping key/value neighbourhood of every window out of
    already projected keys and values.

    Projecting before gathering costs one projection per token instead of one
    per overlapping copy (4x to 81x fewer), with identical results: a padded
    position of the released code holds ``norm1(0)``, whose projection is
    ``fill``. Whole token rows are gathered (long contiguous runs) and the
    heads are split by a strided view, not a copy.

    Args:
        tokens (Tensor): Projected keys and values, (B, N, 2C).
        fill (Tensor): Projection of a padded position, (2C,).
        index (Tensor): (nW, k*k) positions in ``tokens``; N means padding.
        num_heads (int): Attention heads to split the channels into.

    Returns:
        tuple[Tensor, Tensor]: Keys and values, each a
        (B, nW, heads, k*k, C // heads) view.
    """
    B, N, C2 = tokens.shape
    table = torch.cat([tokens, cast(fill, tokens.dtype).expand(B, 1, C2)],
                      1)
    nW, K = index.shape
    kv = table.index_select(1, index.reshape(-1)).view(
        B, nW, K, 2, num_heads, C2 // (2 * num_heads))
    return kv[:, :, :, 0].transpose(2, 3), kv[:, :, :, 1].transpose(2, 3)
