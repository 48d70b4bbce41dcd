"""Neighbourhood attention of the semantic-token generation steps, read
straight from a window-partitioned key/value map: the ``'strips'`` backend
of :mod:`.neighbourhood_attention` (CPU, inference and training).

Gathering a 21x21 neighbourhood per 7x7 window copies every key and value
nine times (a 14x14 one four times), and training would keep those copies
for the backward pass. Here the keys and values are laid out once as
windows, (window row, window column, 49 tokens, 2C), shifted so that every
neighbourhood starts on a window boundary of the map (a 14x14 one is then
exactly 2x2 windows, a 21x21 one 3x3); positions of the map outside the
image hold the padding value, and what a window covers beyond k (k not a
multiple of 7) is masked off.

Forward: within one window row the neighbourhood's part in a given row of
windows is a strip of consecutive windows, so "the strip of every window" is
a single overlapping strided view, heads split by strides too: no copy. Each
row of windows is attended by the fused CPU flash kernel and the partial
results are merged with their log-sum-exps, which is exactly the attention
over the whole neighbourhood.

Backward (:class:`StripAttention`): the kernel's log-sum-exp has no
gradient, and its own backward would write the key gradients once per strip,
i.e. several times per key. The gradients are computed from the keys' side
instead: each key window meets the queries of the span**2 windows whose
neighbourhood it lies in (a small gather: a window has 9 queries against 49
keys), the probabilities are recomputed from the saved log-sum-exps, and
each product of the flash-attention backward is one batched matmul over all
heads, samples and key windows that writes every key's gradient once. What
is kept for the backward pass is the queries, the key/value map (1.4-1.6x
the projected keys and values, against 4x and 9x gathered), the output and
the per-strip log-sum-exps.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .capture import exporting
from .neighbourhoods import over_map_windows

_flash_attention = getattr(
    torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)


@dataclass(frozen=True)
class StripPlan:
    """How one generation step's neighbourhoods map onto whole windows.

    Attributes:
        lead (int): Padding tokens before the image along each axis of the
            key/value map, (k - w) // 2: the neighbourhood of query window
            (i, j) then starts exactly at map window (i, j).
        span (int): Map windows a neighbourhood covers along each axis,
            ceil(k / w).
        mask (Tensor): Additive (span, nWh*P, 1, 1, span*w*w) mask per row
            of windows of the neighbourhood, where P = nWw + span - 1 query
            windows per row (the last span - 1 are placeholders, which make
            every strip start one window after the previous one).
        dead (Tensor): Bool (span, nWh*P): rows of windows in which a
            window has no key at all (their partial result is discarded).
        key_mask (Tensor): The same neighbourhoods from the keys' side,
            additive (R*P, w*w, span**2, 1) with R = nWh + span - 1: for
            each key window, token and slot (a, b), whether the key takes
            part in the attention of query window (row + a - span + 1,
            column + b - span + 1) (-inf where not, or where that window
            does not exist).
    """
    lead: int
    span: int
    mask: Tensor
    dead: Tensor
    key_mask: Tensor

    def to(self, device) -> 'StripPlan':
        return StripPlan(self.lead, self.span, self.mask.to(device),
                         self.dead.to(device), self.key_mask.to(device))


def strip_plan(may_attend: Tensor, num_windows, window_size: int,
               key_window: int) -> StripPlan:
    """Express per-window neighbourhood masks over whole windows.

    Args:
        may_attend (Tensor): Bool (nW, k*k), True where a key takes part
            (the same mask the gathering path uses).
        num_windows (tuple[int, int]): Windows along height and width.
        window_size (int): Window side w.
        key_window (int): Neighbourhood side k.

    Returns:
        StripPlan: The offsets, the strip masks, dead rows and key-side mask.
    """
    w, k = window_size, key_window
    nWh, nWw = num_windows
    span = math.ceil(k / w)
    # (query window, map window offset a, offset b, token)
    attend = over_map_windows(may_attend.reshape(nWh, nWw, k, k), w, False)
    # Strips: (offset a, query window incl. placeholders, b and token).
    strips = F.pad(attend.permute(2, 0, 1, 3, 4),
                   (0, 0, 0, 0, 0, span - 1)).reshape(span, -1, span * w * w)
    return StripPlan((k - w) // 2, span, _additive(strips)[:, :, None, None],
                     ~strips.any(dim=-1), _key_side_mask(attend, span))


def _key_side_mask(attend: Tensor, span: int) -> Tensor:
    """(nWh, nWw, a, b, w*w) neighbourhood masks per query window ->
    additive (R*P, w*w, span**2, 1) per key window (see StripPlan)."""
    nWh, nWw = attend.shape[:2]
    rows, cols = nWh + span - 1, nWw + span - 1
    attend = F.pad(attend, (0, 0, 0, 0, 0, 0) + (span - 1, ) * 4)
    key_side = torch.empty(rows, cols, attend.shape[-1], span, span,
                           dtype=torch.bool)
    for a in range(span):
        for b in range(span):
            # Slot (a, b) of key window (R, C) is query window
            # (R + a - span + 1, C + b - span + 1), which sees this key
            # window at offset (span - 1 - a, span - 1 - b).
            key_side[..., a, b] = attend[a:a + rows, b:b + cols,
                                         span - 1 - a, span - 1 - b]
    return _additive(key_side).reshape(rows * cols, -1, span * span, 1)


def _additive(may_attend: Tensor) -> Tensor:
    return torch.zeros(may_attend.shape).masked_fill(~may_attend, -torch.inf)


def window_kv_map(kv: Tensor, fill: Tensor, num_windows, window_size: int,
                  plan: StripPlan) -> Tensor:
    """Lay projected keys/values out as windows of a map that starts
    ``plan.lead`` padding tokens before the image (see :class:`StripPlan`).

    Channels stay last and whole (2C contiguous values per token), so every
    copy moves long runs, and heads are split by strides later. The map is
    written in two passes: the padding value everywhere, then the tokens
    into their windows; its backward pass reads the tokens' gradients back
    the same way and sums the rest into the padding value's.

    Args:
        kv (Tensor): (B, H, W, 2C) projected image tokens.
        fill (Tensor): (2C,) projection of a padded position.
        num_windows (tuple[int, int]): Windows along height and width.
        window_size (int): Window side w.
        plan (StripPlan): The neighbourhoods' offset and span.

    Returns:
        Tensor: (B, nWh + span, nWw + span - 1, w*w, 2C); the last row of
        windows keeps the placeholder windows' strips in bounds.
    """
    return _WindowLayout.apply(kv, fill.to(kv.dtype), tuple(num_windows),
                               window_size, plan.lead, plan.span)


class _WindowLayout(torch.autograd.Function):
    """:func:`window_kv_map` with a backward pass of two reads (autograd's
    own, through slice assignments, would copy the whole map per slice)."""

    @staticmethod
    def forward(ctx, kv, fill, num_windows, window_size, lead, span):
        B, H, W, C2 = kv.shape
        nWh, nWw = num_windows
        w = window_size
        kv_map = fill.expand(B, nWh + span, nWw + span - 1, w, w,
                             C2).contiguous()
        for window_part, token_part in _window_parts(H, W, w, lead):
            kv_map[window_part] = token_part(kv)
        ctx.geometry = (H, W, w, lead)
        return kv_map.view(B, *kv_map.shape[1:3], w * w, C2)

    @staticmethod
    def backward(ctx, grad_map):
        H, W, w, lead = ctx.geometry
        B, rows, cols, _, C2 = grad_map.shape
        grad_map = grad_map.reshape(B, rows, cols, w, w, C2)
        grad_kv = grad_map.new_empty(B, H, W, C2)
        padded = grad_map.new_ones(rows, cols, w, w)
        for window_part, token_part in _window_parts(H, W, w, lead):
            token_part(grad_kv).copy_(grad_map[window_part])
            padded[window_part[1:5]] = 0
        # Sum of the gradients at padded positions: one matrix-vector
        # product over the map.
        grad_fill = torch.matmul(padded.view(1, -1),
                                 grad_map.reshape(B, -1, C2)).sum(dim=(0, 1))
        return grad_kv, grad_fill, None, None, None, None


def _axis_runs(size: int, lead: int, w: int):
    """Image positions 0..size-1, placed ``lead`` positions into a map of
    windows of side w, as runs (image start, first window, windows, offset
    in the window, positions per window): a partial window, whole windows,
    a partial window."""
    pos = 0
    while pos < size:
        window, offset = divmod(pos + lead, w)
        if offset == 0 and size - pos >= w:
            count, length = (size - pos) // w, w
        else:
            count, length = 1, min(w - offset, size - pos)
        yield pos, window, count, offset, length
        pos += count * length


def _window_parts(H: int, W: int, w: int, lead: int):
    """Where the image tokens go in the window map: pairs of the map's index
    (B, window rows, window columns, token rows, token columns) and a
    function giving the matching (B, rows, cols, height, width, 2C) view of
    a (B, H, W, 2C) image map (at most 3 x 3 such runs)."""
    for y, row, rows, dy, height in _axis_runs(H, lead, w):
        for x, col, cols, dx, width in _axis_runs(W, lead, w):

            def token_part(t, y=y, rows=rows, height=height, x=x, cols=cols,
                           width=width):
                t = t[:, y:y + rows * height, x:x + cols * width]
                return t.reshape(t.shape[0], rows, height, cols, width,
                                 -1).transpose(2, 3)

            yield (slice(None), slice(row, row + rows),
                   slice(col, col + cols), slice(dy, dy + height),
                   slice(dx, dx + width)), token_part


def _strips(kv_map: Tensor, row: int, num_query_windows: int, span: int,
            num_heads: int):
    """Keys and values of every query window's strip in one row of windows
    of its neighbourhood, as overlapping (M, heads, span*w*w, d) views of
    one sample's map (M query windows, placeholders included)."""
    _, cols, tokens, C2 = kv_map.shape
    d = C2 // (2 * num_heads)
    offset = kv_map.storage_offset() + row * kv_map.stride(0)
    shape = (num_query_windows, num_heads, span * tokens, d)
    strides = (kv_map.stride(1), d, kv_map.stride(2), 1)
    return tuple(
        kv_map.as_strided(shape, strides, offset + part * C2 // 2)
        for part in (0, 1))


def _to_key_side(x: Tensor, span: int, dim: int) -> Tensor:
    """Per query window -> per key window: (..., nWh, nWw, *rest), the
    window grid at dims ``dim`` and ``dim + 1``, becomes contiguous
    (..., R, P, span, span, *rest), where slot (a, b) of key window (r, c)
    holds query window (r + a - span + 1, c + b - span + 1), zeros where
    there is none."""
    rest = x.dim() - dim - 2
    x = F.pad(x, (0, 0) * rest + (span - 1, ) * 4)
    x = x.unfold(dim, span, 1).unfold(dim + 1, span, 1)
    order = (*range(dim + 2), x.dim() - 2, x.dim() - 1,
             *range(dim + 2, x.dim() - 2))
    return x.permute(order).contiguous()


def _sum_to_query_side(y: Tensor, span: int, dim: int) -> Tensor:
    """Adjoint of :func:`_to_key_side`: contiguous (..., R, P, span, span,
    *rest) per key window -> (..., nWh, nWw, *rest), each query window
    summing what its slots in the key windows hold."""
    size, stride = list(y.shape), list(y.stride())
    s_row, s_col, s_a, s_b = stride[dim:dim + 4]
    # Entry (i, j, a, b) of the view: key window (i + a, j + b), slot
    # (span - 1 - a, span - 1 - b), which holds query window (i, j).
    size[dim:dim + 2] = [size[dim] - span + 1, size[dim + 1] - span + 1]
    stride[dim + 2:dim + 4] = [s_row - s_a, s_col - s_b]
    view = y.as_strided(size, stride,
                        y.storage_offset() + (span - 1) * (s_a + s_b))
    return view.sum(dim=(dim + 2, dim + 3))


class StripAttention(torch.autograd.Function):
    """Attention of each query window over its neighbourhood: strips merged
    exactly in the forward pass, gradients from the keys' side (see the
    module docstring). Only the queries, the key/value map, the output and
    the log-sum-exp are kept for the backward pass.

    ``apply(q, kv_map, plan, num_windows)``: ``q`` is (B, M, heads, Nq, d)
    with the placeholder windows of :class:`StripPlan`, ``kv_map`` the
    output of :func:`window_kv_map` (contiguous); returns (B, M, heads, Nq,
    d).
    """

    @staticmethod
    def forward(ctx, q: Tensor, kv_map: Tensor, plan: StripPlan,
                num_windows) -> Tensor:
        B, M, heads = q.shape[:3]
        span = plan.span
        mask = plan.mask.to(q.dtype)
        outs, lses = [], []
        for b in range(B):
            for r in range(span):
                keys, values = _strips(kv_map[b], r, M, span, heads)
                out, lse = _flash_attention(q[b], keys, values,
                                            attn_mask=mask[r])
                outs.append(out)
                lses.append(lse)
        outs = torch.stack(outs).view(B, span, *q.shape[1:])
        lses = torch.stack(lses).view(B, span, *q.shape[1:-1])
        # The kernel reports a row without keys as lse 0: it must weigh
        # nothing (a finite floor keeps placeholder windows, which have no
        # key at all, free of NaNs).
        lses.masked_fill_(plan.dead[None, :, :, None, None],
                          torch.finfo(lses.dtype).min)
        out = (lses.softmax(dim=1)[..., None] * outs).sum(dim=1).to(q.dtype)
        ctx.save_for_backward(q, kv_map, out, lses)
        ctx.plan, ctx.num_windows = plan, num_windows
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """The flash-attention backward, batched over every head, sample
        and key window at once: a few large operations rather than many
        small ones, which matters most when the cores are shared (every
        parallel operation then waits for a time slice)."""
        q, kv_map, out, lses = ctx.saved_tensors
        plan, (nWh, nWw) = ctx.plan, ctx.num_windows
        grad_out = grad_out.to(q.dtype)
        B, M, heads, Nq, d = q.shape
        span, cols = plan.span, kv_map.shape[2]
        rows = nWh + span - 1

        def key_side(x):
            """(B, M, heads, Nq, ...) per query window, placeholders
            included -> (heads*B*R*P, span**2*Nq, ...) per key window."""
            x = x.reshape(B, nWh, cols, *x.shape[2:])[:, :, :nWw]
            x = _to_key_side(x.movedim(3, 0), span, dim=2)
            return x.view(heads * B * rows * cols, span * span * Nq,
                          *x.shape[7:])

        scale = d**-0.5
        q_side, grad_side = key_side(q * scale), key_side(grad_out)
        # rowsum(dO * O), the softmax backward's correction.
        delta = key_side((grad_out * out).sum(dim=-1))[:, None]
        keys, values = kv_map[:, :rows].reshape(
            B, rows * cols, -1, 2, heads, d).permute(3, 4, 0, 1, 2, 5).reshape(
                2, heads * B * rows * cols, -1, d)
        probs = torch.bmm(keys, q_side.transpose(1, 2))
        probs.view(heads * B, rows * cols, -1, span * span, Nq).add_(
            plan.key_mask.to(probs.dtype))
        lse = torch.logsumexp(lses, dim=1)
        probs.sub_(key_side(lse)[:, None]).exp_()
        grad_values = torch.bmm(probs, grad_side)
        # dS = P * (dP - rowsum(dO * O)), dP = V dO^T.
        grad_logits = torch.bmm(values, grad_side.transpose(1, 2))
        grad_logits.sub_(delta).mul_(probs)
        grad_keys = torch.bmm(grad_logits, q_side)
        grad_q = torch.bmm(grad_logits.transpose(1, 2), keys)

        grad_map = torch.zeros_like(kv_map)
        target = grad_map[:, :rows].view(B, rows * cols, -1, 2, heads,
                                         d).permute(3, 4, 0, 1, 2, 5)
        for part, grad in enumerate((grad_keys, grad_values)):
            target[part] = grad.view(heads, B, rows * cols, -1, d)
        grad_q = _sum_to_query_side(
            grad_q.view(heads, B, rows, cols, span, span, Nq, d), span, 2)
        grad_q = F.pad(grad_q.movedim(0, 3) * scale,
                       (0, 0, 0, 0, 0, 0, 0, cols - nWw))
        return grad_q.reshape(B, M, heads, Nq, d), grad_map, None, None


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
    cols = nWw + plan.span - 1
    # Placeholder query windows at the end of each row (see StripPlan).
    q = F.pad(q.reshape(B, nWh, nWw, heads, Nq, d),
              (0, 0, 0, 0, 0, 0, 0, plan.span - 1))
    out = StripAttention.apply(q.reshape(B, nWh * cols, heads, Nq, d),
                               kv_map.contiguous(), plan, tuple(num_windows))
    out = out.reshape(B, nWh, cols, heads, Nq, d)[:, :, :nWw]
    return out.reshape(B, nWh * nWw, heads, Nq, d)


def strips_available(device_type: str) -> bool:
    """Whether the strip path can serve a call on ``device_type``: CPU (or
    meta, for counting what CPU runs do) and no graph capture (the private
    kernel has no export; key windows are exported instead)."""
    return (_flash_attention is not None and device_type in ('cpu', 'meta')
            and not exporting())
