"""Neighbourhood attention of the semantic-token generation steps in plain
ops, without copying keys and values per window (exported graphs).

Gathering a k x k neighbourhood per w x w window copies every key and value
(k / w)**2 times (4x for k = 14, 9x for k = 21); in ONNX Runtime those
copies, and the transposes and splits of the copies, cost more than the
attention itself. Here the keys and values are laid out once, per head, as
a map of whole windows that starts ``(k - w) // 2`` positions before the
image, so that the neighbourhood of query window (i, j) is exactly the map
windows (i + a, j + b), 0 <= a, b < span = ceil(k / w). For each offset
(a, b) the *queries* (a few per window) are moved by (a, b) windows instead
of the keys, one batched matmul over all map windows gives that offset's
logits, and the logits are moved back: only query-sized and logit-sized
tensors are copied. One softmax over all offsets, the same moves for the
values, and the sum over offsets give the attention over the neighbourhood.

Padded positions hold the projection ``fill`` of a padded token. Keys and
values are computed minus ``fill``, i.e. as the bias-free projection of the
normed tokens minus the normed padding, so that a padded position is a zero
row: for the keys that shifts every logit of a query by the same amount
(softmax ignores it), for the values it shifts the output by ``fill``'s
value part, added back at the end. The map is then one row gather per head
(the zero row for padding), with no pad or high-rank transpose in the
graph.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .capture import cast


def attend_by_window_offsets(q: Tensor, tokens: Tensor, kv_weight: Tensor,
                             fill: Tensor, mask: Tensor, num_windows,
                             window_size: int, key_window: int) -> Tensor:
    """Attention of each window's queries over its k x k neighbourhood.

    The same numbers as gathering the neighbourhoods
    (:func:`~.neighbourhoods.gather_neighbourhoods`) and attending with ``mask``.

    Args:
        q (Tensor): (B, nW, heads, Nq, d) projected queries.
        tokens (Tensor): (B, H, W, C) normed image tokens minus the normed
            padded token: their bias-free key/value projection is the
            projected keys/values minus ``fill``.
        kv_weight (Tensor): (2C, C) key/value projection weight, keys first.
        fill (Tensor): (2C,) projection of a padded position.
        mask (Tensor): Additive (nW, 1, 1, k*k) neighbourhood key mask, the
            one the gathering path uses.
        num_windows (tuple[int, int]): Windows along height and width.
        window_size (int): Window side w.
        key_window (int): Neighbourhood side k.

    Returns:
        Tensor: (B, nW, heads, Nq, d).
    """
    B, nW, heads, Nq, d = q.shape
    _, H, W, C = tokens.shape
    w, k = window_size, key_window
    span = math.ceil(k / w)
    rows, cols = num_windows[0] + span - 1, num_windows[1] + span - 1
    tokens = torch.cat(
        [tokens.reshape(B, H * W, C),
         tokens.new_zeros(B, 1, C)], 1)
    index = _map_index(H, W, w, (k - w) // 2, rows, cols, tokens.device)
    kv_weight = cast(kv_weight, tokens.dtype)

    def window_map(weight: Tensor) -> Tensor:
        """(B, heads, rows, cols, w*w, d) keys or values minus fill."""
        per_head = F.linear(tokens, weight).reshape(B, H * W + 1, heads,
                                                    d).transpose(1, 2)
        return per_head.index_select(2, index).reshape(
            B, heads, rows, cols, w * w, d)

    keys, values = window_map(kv_weight[:C]), window_map(kv_weight[C:])
    q = (q * d**-0.5).reshape(B, *num_windows, heads, Nq, d).permute(
        0, 3, 1, 2, 4, 5)

    offsets = [(a, b) for a in range(span) for b in range(span)]
    logits = [
        _move_back(_move(q, a, b, span) @ keys.transpose(-2, -1), a, b,
                   num_windows) for a, b in offsets
    ]
    # (B, heads, nWh, nWw, Nq, span**2 * w*w), offsets in (a, b) order.
    logits = torch.cat(logits, dim=-1) + cast(
        _offset_mask(mask, num_windows, w, k, span), q.dtype)
    probs = logits.softmax(dim=-1).split(w * w, dim=-1)
    out = sum(
        _move_back(_move(p, a, b, span) @ values, a, b, num_windows)
        for p, (a, b) in zip(probs, offsets))
    out = out + cast(fill[C:], out.dtype).reshape(heads, 1, 1, 1, d)
    return out.permute(0, 2, 3, 1, 4, 5).reshape(B, nW, heads, Nq, d)


def _map_index(H, W, w: int, lead: int, rows: int, cols: int,
               device) -> Tensor:
    """(rows*cols*w*w, ) raster index of the image token at each position
    of the window map, window by window (H*W, the zero row, for padding)."""
    y = torch.arange(rows * w, device=device) - lead
    x = torch.arange(cols * w, device=device) - lead
    inside = ((y >= 0) & (y < H))[:, None] & ((x >= 0) & (x < W))[None, :]
    flat = torch.where(inside, y[:, None] * W + x[None, :], H * W)
    return flat.reshape(rows, w, cols, w).transpose(1, 2).reshape(-1)


def _move(x: Tensor, a: int, b: int, span: int) -> Tensor:
    """(B, heads, nWh, nWw, ...) per query window -> (B, heads, nWh + span -
    1, nWw + span - 1, ...) with query window (i, j) at map window
    (i + a, j + b), zeros elsewhere."""
    pads = (0, 0) * (x.dim() - 4) + (b, span - 1 - b, a, span - 1 - a)
    return F.pad(x, pads)


def _move_back(x: Tensor, a: int, b: int, num_windows) -> Tensor:
    """Inverse of :func:`_move`: the query windows' entries."""
    return x[:, :, a:a + num_windows[0], b:b + num_windows[1]]


def _offset_mask(mask: Tensor, num_windows, w: int, k: int,
                 span: int) -> Tensor:
    """Additive (nW, 1, 1, k*k) mask over each k x k neighbourhood ->
    (nWh, nWw, 1, span**2 * w*w) over its map windows in offset order; the
    part of the map windows beyond k (k not a multiple of w) is masked."""
    nWh, nWw = num_windows
    mask = mask.reshape(nWh, nWw, k, k)
    if span * w != k:
        mask = F.pad(mask, (0, span * w - k, 0, span * w - k),
                     value=-float('inf'))
    mask = mask.reshape(nWh, nWw, span, w, span, w).permute(0, 1, 2, 4, 3, 5)
    return mask.reshape(nWh, nWw, 1, span * span * w * w)
