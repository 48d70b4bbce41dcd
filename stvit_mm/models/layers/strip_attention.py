"""Neighbourhood attention of the semantic-token generation steps, read
straight from a window-partitioned key/value map (inference path).

Gathering a 21x21 neighbourhood per 7x7 window copies every key and value
nine times, and that copy, not the arithmetic, is what the generation steps
spend their time on. Here the keys and values are laid out once as windows,
(heads, window row, window column, 49 tokens, head_dims), with a border of
padding windows. Within one window row the neighbourhood's part in a given
row of windows is a strip of consecutive windows, so "the strip of every
window" is a single overlapping strided view: no copy. A neighbourhood that
is not a whole number of windows (14x14) is covered by whole windows and the
rest masked off.

Each row of windows of the neighbourhood is attended separately and the
partial results are merged with their log-sum-exps, which is exactly the
attention over the whole neighbourhood. The fused CPU kernel returns the
log-sum-exp without a gradient, so this path serves inference; training
gathers (:func:`~.geometry.gather_neighbourhoods`), with identical results.
"""
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .capture import exporting

_flash_attention_with_lse = getattr(
    torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)


@dataclass(frozen=True)
class StripPlan:
    """How one generation step's neighbourhoods map onto whole windows.

    Attributes:
        border (int): Padding windows on every side (nb).
        mask (Tensor): Additive (2nb+1, nWh*P, 1, 1, (2nb+1)*w*w) mask per
            row of windows of the neighbourhood, where P = nWw + 2nb query
            windows per row (the last 2nb are placeholders, which make every
            strip start one window after the previous one).
        dead (Tensor): Bool (2nb+1, nWh*P): rows of windows in which a
            window has no key at all (their partial result is discarded).
    """
    border: int
    mask: Tensor
    dead: Tensor

    def to(self, device) -> 'StripPlan':
        return StripPlan(self.border, self.mask.to(device),
                         self.dead.to(device))


def strip_plan(may_attend: Tensor, num_windows, window_size: int,
               key_window: int) -> StripPlan:
    """Express per-window neighbourhood masks over whole-window strips.

    Args:
        may_attend (Tensor): Bool (nW, k*k), True where a key takes part
            (the same mask the gathering path uses).
        num_windows (tuple[int, int]): Windows along height and width.
        window_size (int): Window side w.
        key_window (int): Neighbourhood side k.

    Returns:
        StripPlan: The border, masks and dead rows.
    """
    w, k = window_size, key_window
    nWh, nWw = num_windows
    before = (k - w) // 2
    border = math.ceil(max(before, k - w - before) / w)
    span = 2 * border + 1
    # Position of each (block row, block col, token) key relative to the
    # top-left of its window, and of each neighbourhood key likewise.
    offsets = (torch.arange(span) - border)[:, None] * w + torch.arange(w)
    offsets = offsets.reshape(-1)  # span*w positions along one axis
    inside = (offsets >= -before) & (offsets < k - before)
    local = (offsets + before).clamp(0, k - 1)
    grid = may_attend.reshape(nWh, nWw, k, k)
    rows, cols = local[:, None], local[None, :]
    attend = grid[:, :, rows, cols] & (inside[:, None] & inside[None, :])
    # nWh, nWw, span*w (rows), span*w (cols) -> nWh, nWw, span, w, span, w
    attend = attend.reshape(nWh, nWw, span, w, span, w)
    attend = attend.permute(2, 0, 1, 4, 3, 5).reshape(span, nWh, nWw,
                                                      span * w * w)
    padded = torch.zeros(span, nWh, nWw + 2 * border, span * w * w,
                         dtype=torch.bool)
    padded[:, :, :nWw] = attend
    padded = padded.reshape(span, -1, span * w * w)
    dead = ~padded.any(dim=-1)
    mask = torch.zeros(padded.shape).masked_fill(~padded, -torch.inf)
    return StripPlan(border, mask[:, :, None, None], dead)


def window_kv_map(kv: Tensor, fill: Tensor, num_windows, window_size: int,
                  border: int, num_heads: int) -> Tensor:
    """Lay projected keys/values out as bordered windows, heads first.

    Args:
        kv (Tensor): (B, H, W, 2C) projected image tokens.
        fill (Tensor): (2C,) projection of a padded position.
        num_windows (tuple[int, int]): Windows along height and width.
        window_size (int): Window side w.
        border (int): Padding windows on every side.
        num_heads (int): Heads.

    Returns:
        Tensor: (B, 2, heads, nWh + 2*border + 1, nWw + 2*border, w*w, d);
        the extra bottom row of windows keeps the last strips in bounds.
    """
    B, H, W, C2 = kv.shape
    w, nb = window_size, border
    rows, cols = num_windows[0] + 2 * nb + 1, num_windows[1] + 2 * nb
    canvas = fill.to(kv.dtype).reshape(1, 1, 1, C2).repeat(
        B, rows * w, cols * w, 1)
    canvas[:, nb * w:nb * w + H, nb * w:nb * w + W] = kv
    canvas = canvas.reshape(B, rows, w, cols, w, 2, num_heads, -1)
    return canvas.permute(0, 5, 6, 1, 3, 2, 4, 7).reshape(
        B, 2, num_heads, rows, cols, w * w, C2 // (2 * num_heads))


def strip_attention(q: Tensor, kv_map: Tensor, plan: StripPlan,
                        num_windows) -> Tensor:
    """Attention of each window's queries over its neighbourhood.

    Args:
        q (Tensor): (B, nW, heads, Nq, d) projected queries.
        kv_map (Tensor): Output of :func:`window_kv_map`.
        plan (StripPlan): Masks for this neighbourhood.
        num_windows (tuple[int, int]): Windows along height and width.

    Returns:
        Tensor: (B, nW, heads, Nq, d).
    """
    B, _, heads, Nq, d = q.shape
    nWh, nWw = num_windows
    nb = plan.border
    span, cols = 2 * nb + 1, nWw + 2 * nb
    tokens = kv_map.shape[-2]
    # Placeholder query windows at the end of each row (see StripPlan).
    q = torch.nn.functional.pad(
        q.reshape(B, nWh, nWw, heads, Nq, d), (0, 0, 0, 0, 0, 0, 0, 2 * nb))
    q = q.reshape(B, nWh * cols, heads, Nq, d)
    window = tokens * d
    outs = q.new_empty(B, span, nWh * cols, heads, Nq, d)
    lses = q.new_empty(B, span, nWh * cols, heads, Nq)
    for b in range(B):
        for r in range(span):
            strips = []
            for part in (0, 1):
                base = kv_map[b, part, :, r]  # heads, rows-r, cols, w*w, d
                strips.append(base.as_strided(
                    (nWh * cols, heads, span * tokens, d),
                    (window, base.stride(0), d, 1), base.storage_offset()))
            outs[b, r], lses[b, r] = _flash_attention_with_lse(
                q[b], strips[0], strips[1],
                attn_mask=plan.mask[r].to(q.dtype))
    # The kernel reports a fully masked row as lse 0; it must weigh nothing.
    lses = lses.masked_fill(plan.dead[None, :, :, None, None], -torch.inf)
    weights = torch.softmax(lses, dim=1).nan_to_num(0.)
    out = (weights[..., None] * outs).sum(dim=1)
    out = out.reshape(B, nWh, cols, heads, Nq, d)[:, :, :nWw]
    return out.reshape(B, nWh * nWw, heads, Nq, d)


def strips_available(x: Tensor) -> bool:
    """Whether the strip path can serve this call: CPU (or meta, for
    counting what CPU inference does), no autograd, no graph capture (the
    private kernel has no export; the gathered path is exported instead)."""
    return (_flash_attention_with_lse is not None
            and x.device.type in ('cpu', 'meta')
            and not torch.is_grad_enabled()
            and not exporting())
