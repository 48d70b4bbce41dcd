"""Each window's key/value neighbourhood: cut out of tokens projected once
(the gathered path: CUDA, attention dropout, the gathered recovery), or its
mask laid over whole windows of a key/value map (the strip and key-window
paths)."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
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


def over_map_windows(grid: Tensor, window_size: int, beyond) -> Tensor:
    """Per-window neighbourhood entries laid over the map windows each
    neighbourhood starts at, in offset order.

    Args:
        grid (Tensor): (nWh, nWw, k, k) an entry (mask value) per position
            of each window's k x k neighbourhood.
        window_size (int): Window side w.
        beyond: The entry of map positions past k (k not a multiple of w).

    Returns:
        Tensor: (nWh, nWw, span, span, w*w), span = ceil(k / w): the
        entries of map window (a, b) of each neighbourhood, token by token.
    """
    nWh, nWw, k, _ = grid.shape
    w = window_size
    span = math.ceil(k / w)
    if span * w != k:
        grid = F.pad(grid, (0, span * w - k, 0, span * w - k), value=beyond)
    return grid.reshape(nWh, nWw, span, w, span, w).permute(
        0, 1, 2, 4, 3, 5).reshape(nWh, nWw, span, span, w * w)
