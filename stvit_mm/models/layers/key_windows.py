"""Neighbourhood attention of the semantic-token generation steps in plain
ops, without copying keys and values per window: the ``'key_windows'``
backend (:mod:`.neighbourhood_attention`), for exported graphs and for
training on any device (autograd differentiates these ops).

Gathering a k x k neighbourhood per w x w window copies every key and value
(k / w)**2 times (4x for k = 14, 9x for k = 21); in ONNX Runtime those
copies, and the transposes and splits of the copies, cost more than the
attention itself. Here the keys and values are laid out once, per head, as
a map of whole windows that starts ``(k - w) // 2`` positions before the
image, so that the neighbourhood of query window (i, j) is exactly the map
windows (i + a, j + b), 0 <= a, b < span = ceil(k / w). Each map window then
meets the queries of the span**2 query windows whose neighbourhoods hold
it: those queries (a few per window) are gathered next to it, one batched
matmul gives every logit, and one gather brings each query's span**2 logit
blocks together for a single softmax over its neighbourhood; the
probabilities go back to the map windows the same way for the values. Only
query-, logit- and output-sized tensors are copied, in a handful of large
ops instead of a few per window offset.

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
from .neighbourhoods import over_map_windows


def attend_by_key_windows(q: Tensor, tokens: Tensor, kv_weight: Tensor,
                          fill: Tensor, mask: Tensor, num_windows,
                          window_size: int, key_window: int,
                          dropout_p: float = 0.) -> Tensor:
    """Attention of each window's queries over its k x k neighbourhood.

    The same numbers as gathering the neighbourhoods
    (:func:`~.neighbourhoods.gather_neighbourhoods`) and attending with
    ``mask``.

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
        dropout_p (float): Dropout on the attention weights (training), as
            ``scaled_dot_product_attention`` applies it.

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
        """(B, heads, rows*cols, w*w, d) keys or values minus fill."""
        per_head = F.linear(tokens, weight).reshape(B, H * W + 1, heads,
                                                    d).transpose(1, 2)
        return per_head.index_select(2, index).reshape(
            B, heads, rows * cols, w * w, d)

    keys, values = window_map(kv_weight[:C]), window_map(kv_weight[C:])
    to_map, to_query = _query_rows(num_windows, span, Nq, q.device)
    # Map rows are (map window, offset, query); query rows are (query
    # window, query, offset), where query window + offset = map window.
    q = (q * d**-0.5).transpose(1, 2).reshape(B, heads, nW * Nq, d)
    q = q.index_select(2, to_map // (span * span)).reshape(
        B, heads, rows * cols, -1, d)
    logits = (q @ keys.transpose(-2, -1)).reshape(B, heads, -1, w * w)
    logits = logits.index_select(2, to_query).reshape(
        B, heads, nW, Nq, -1) + cast(
            _offset_mask(mask, num_windows, w, k), q.dtype)
    probs = logits.softmax(dim=-1)
    if dropout_p:
        probs = F.dropout(probs, dropout_p)
    probs = probs.reshape(B, heads, -1, w * w)
    out = probs.index_select(2, to_map).reshape(B, heads, rows * cols, -1,
                                                w * w) @ values
    out = out.reshape(B, heads, -1, d).index_select(2, to_query).reshape(
        B, heads, nW, Nq, span * span, d).sum(dim=4)
    out = out + cast(fill[C:], out.dtype).reshape(heads, 1, 1, d)
    return out.transpose(1, 2)


def _map_index(H, W, w: int, lead: int, rows: int, cols: int,
               device) -> Tensor:
    """(rows*cols*w*w, ) raster index of the image token at each position
    of the window map, window by window (H*W, the zero row, for padding)."""
    y = torch.arange(rows * w, device=device) - lead
    x = torch.arange(cols * w, device=device) - lead
    inside = ((y >= 0) & (y < H))[:, None] & ((x >= 0) & (x < W))[None, :]
    flat = torch.where(inside, y[:, None] * W + x[None, :], H * W)
    return flat.reshape(rows, w, cols, w).transpose(1, 2).reshape(-1)


def _query_rows(num_windows, span: int, queries: int, device):
    """Row indices between the two layouts of the attention.

    Returns:
        tuple[Tensor, Tensor]: ``to_map`` (rows*cols*span**2*Nq, ): for each
        (map window, offset (a, b), query) the (query window, query, offset)
        row of the query window (i, j) = map window - (a, b); a query window
        off the grid gives row 0, whose results are never read back.
        ``to_query`` (nW*Nq*span**2, ): for each (query window, query,
        offset) the (map window, offset, query) row that holds its keys.
    """
    nWh, nWw = num_windows
    cols = nWw + span - 1
    offset = torch.arange(span, device=device)
    query = torch.arange(queries, device=device)
    blocks = span * span
    block = (offset[:, None] * span + offset[None, :])  # (span, span)
    # (rows, cols, span, span): the query window each map block serves.
    i = torch.arange(nWh + span - 1, device=device)[:, None, None, None] - \
        offset[:, None]
    j = torch.arange(cols, device=device)[:, None, None] - offset
    on_grid = (i >= 0) & (i < nWh) & (j >= 0) & (j < nWw)
    window = torch.where(on_grid, i * nWw + j, 0)
    to_map = ((window[..., None] * queries + query) * blocks +
              block[..., None]).reshape(-1)
    # (nWh, nWw, span, span): the map window each query window's block is.
    mapped = ((torch.arange(nWh, device=device)[:, None, None, None] +
               offset[:, None]) * cols +
              torch.arange(nWw, device=device)[:, None, None] + offset)
    to_query = ((mapped * blocks + block)[:, :, None] * queries +
                query[:, None, None]).reshape(-1)
    return to_map, to_query


def _offset_mask(mask: Tensor, num_windows, w: int, k: int) -> Tensor:
    """Additive (nW, 1, 1, k*k) mask over each k x k neighbourhood ->
    (nW, 1, span**2 * w*w) over its map windows in offset order; the part
    of the map windows beyond k (k not a multiple of w) is masked."""
    nWh, nWw = num_windows
    mask = over_map_windows(mask.reshape(nWh, nWw, k, k), w, -float('inf'))
    return mask.reshape(nWh * nWw, 1, -1)
