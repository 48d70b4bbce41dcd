"""What STViT-R's sparsified stage computes from the input size alone.

The semantic-token generation steps and the recovery block attend from a
window to an overlapping neighbourhood around it. Which keys of a
neighbourhood are padding, and therefore masked, depends on the feature-map
size alone, so it is computed once per size (:func:`stage_geometry`, cached)
and shared by every block of every dumbbell unit. While a graph is captured
for every size (``torch.export``, ONNX), :mod:`.export_geometry` computes
the same quantities from tensor ops of the symbolic size instead.

Two masking modes exist:

- ``'official'`` reproduces the released code. It builds an additive mask
  with ``mask[:, -pad_b:, -pad_r:] = -1000``; when one pad is 0 that slice
  covers the whole axis, so only the bottom-right corner of the padding is
  masked (or, with no padding at all, every key including the outer border
  gets the same -1000, i.e. nothing is masked). The recovery block applies
  the image-token pad amounts to the semantic-token grid.
- ``'exact'`` masks every key that does not come from a real image token
  (or, in the recovery and semantic blocks, from a semantic token pooled from
  at least one real image token).

-1000 underflows to an exact zero in ``softmax`` whenever at least one key is
unmasked, so both modes become additive 0 / -inf masks, shared by all queries
of a window: that is the form ``scaled_dot_product_attention``'s fused CPU
kernel takes at full speed (a boolean mask is slower there).
"""
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

from .neighbourhood_attention import prefers_dense_recovery
from .strip_attention import StripPlan, strip_plan

PAD_MASK_MODES = ('official', 'exact')


def adaptive_pool_bounds(in_size: int,
                         out_size: int) -> Tuple[Tuple[int, int], ...]:
    """Index ranges that ``F.adaptive_max_pool2d`` pools along one axis.

    Args:
        in_size (int): Length of the pooled axis.
        out_size (int): Number of pooled outputs along it.

    Returns:
        tuple[tuple[int, int]]: ``(start, end)`` of each output's region.
    """
    return tuple((math.floor(i * in_size / out_size),
                  math.ceil((i + 1) * in_size / out_size))
                 for i in range(out_size))


def neighbourhood_padding(key_window: int, stride: int) -> Tuple[int, int]:
    """Leading and trailing padding that centres a ``key_window`` wide
    neighbourhood on each ``stride`` wide window, as the released code does
    (floor before, ceil after)."""
    extra = key_window - stride
    return extra // 2, extra - extra // 2


def _neighbourhood_index(grid: Tensor, key_window: int, stride: int) -> Tensor:
    """(nW, k*k) entries of ``grid`` (an (H, W) map of token indices, -1 for
    padding) that each window's neighbourhood covers, -1 outside it."""
    before, after = neighbourhood_padding(key_window, stride)
    grid = torch.nn.functional.pad(grid, (before, after, before, after),
                                   value=-1)
    return grid.unfold(0, key_window, stride).unfold(
        1, key_window, stride).reshape(-1, key_window * key_window)


def _image_index(size, padded, key_window, window_size) -> Tensor:
    """Neighbourhood index into the (H*W + 1) image-token table."""
    H, W = size
    grid = torch.full(padded, -1, dtype=torch.long)
    grid[:H, :W] = torch.arange(H * W).reshape(H, W)
    index = _neighbourhood_index(grid, key_window, window_size)
    return index.masked_fill(index < 0, H * W)


def _official_key_mask(grid: Tuple[int, int], pads: Tuple[int, int],
                       key_window: int, stride: int) -> Tensor:
    """Which neighbourhood keys the released code lets each window see.

    Args:
        grid (tuple[int, int]): Size of the padded token grid the keys come
            from (image tokens, or semantic tokens for the recovery block).
        pads (tuple[int, int]): The image tokens' bottom and right pads, which
            the released code applies to this grid whatever it is.
        key_window (int): Side of the neighbourhood.
        stride (int): Step between neighbourhoods.

    Returns:
        Tensor: Bool (nW, key_window**2), True where a key takes part.
    """
    pad_b, pad_r = pads
    masked = torch.zeros(grid, dtype=torch.bool)
    # The released code's slice: with a pad of 0, ``-0:`` is the whole axis.
    masked[-pad_b:, -pad_r:] = True
    return _key_mask_from_blocked(masked, key_window, stride, official=True)


def _exact_key_mask(valid: Tensor, key_window: int, stride: int) -> Tensor:
    """Keys that come from real tokens, per window neighbourhood."""
    return _key_mask_from_blocked(~valid, key_window, stride, official=False)


def _key_mask_from_blocked(blocked: Tensor, key_window: int, stride: int,
                           official: bool) -> Tensor:
    before, after = neighbourhood_padding(key_window, stride)
    padded = torch.nn.functional.pad(
        blocked, (before, after, before, after), value=True)
    windows = padded.unfold(0, key_window, stride).unfold(1, key_window,
                                                          stride)
    windows = windows.reshape(-1, key_window * key_window)
    may_attend = ~windows
    if official:
        # A window whose keys all carry -1000 sees a uniform shift, which
        # softmax ignores: every key, the outer border included, takes part.
        may_attend[~may_attend.any(dim=1)] = True
    return may_attend


@dataclass(frozen=True)
class StageGeometry:
    """Size-dependent quantities of the sparsified stage.

    Attributes:
        size (tuple[int, int]): Image-token grid (H, W) entering the stage.
        sample_window_size (int): Semantic tokens per window side s.
        pads (tuple[int, int]): Bottom and right pads to whole windows.
        num_windows (tuple[int, int]): Windows along height and width.
        semantic_masks (tuple[Tensor | None]): Per generation step, additive
            (nW, 1, 1, k*k) key masks, or None when every key takes part.
        recovery_mask (Tensor | None): Additive (nW, 1, 1, k*k) recovery key
            mask.
        local_mask (Tensor | None): Additive (nW, 1, 1, s*s) mask of the
            semantic tokens pooled from padding alone (exact mode), else None.
        global_mask (Tensor | None): The same as (1, 1, 1, nW*s*s).
        recovery_dense (bool): The recovery block attends to all semantic
            tokens (window order) plus one folded padding key, with
            ``recovery_mask`` of shape (nW, 1, 1, nW*s*s + 1), instead of
            gathering a neighbourhood per window.
        recovery_windows (Tensor | None): (H*W, ) window of every image
            token in raster order, when ``recovery_dense``: the dense
            recovery attends from the image tokens themselves (no padding to
            whole windows), each with its window's mask row.
        semantic_index (tuple[Tensor]): Per generation step, (nW, k*k)
            neighbourhood index into the image tokens (H*W = padding).
        semantic_plans (tuple[StripPlan]): Per generation step, the same
            neighbourhoods over whole windows (eager CPU path).
        recovery_index (Tensor | None): (nW, k*k) neighbourhood index into the
            semantic tokens in window order (nW*s*s = padding), when the
            recovery block gathers.
    """
    size: Tuple[int, int]
    sample_window_size: int
    pads: Tuple[int, int]
    num_windows: Tuple[int, int]
    semantic_masks: Tuple[Optional[Tensor], ...]
    recovery_mask: Optional[Tensor]
    local_mask: Optional[Tensor] = None
    global_mask: Optional[Tensor] = None
    recovery_dense: bool = False
    recovery_windows: Optional[Tensor] = None
    semantic_index: Tuple[Tensor, ...] = ()
    semantic_plans: Tuple[StripPlan, ...] = ()
    recovery_index: Optional[Tensor] = None


def _as_attn_mask(may_attend: Tensor) -> Optional[Tensor]:
    """(G, N) bool -> additive (G, 1, 1, N) 0/-inf mask, None if all True."""
    if bool(may_attend.all()):
        return None
    mask = torch.zeros(may_attend.shape).masked_fill(~may_attend, -torch.inf)
    return mask[:, None, None, :]


def _dense_recovery_mask(may_attend: Tensor, num_windows, sample_size,
                         key_window) -> Tensor:
    """Turn per-window neighbourhood masks into a mask over all semantic
    tokens (window order) plus one folded padding key.

    Every padded key of the released code holds the same vector, so n of
    them contribute exactly what one does with its logit raised by log(n).

    Args:
        may_attend (Tensor): Bool (nW, k*k) neighbourhood mask.
        num_windows (tuple[int, int]): Windows along height and width.
        sample_size (int): Semantic tokens per window side s.
        key_window (int): Neighbourhood side k, in semantic tokens.

    Returns:
        Tensor: Additive (nW, N + 1) mask, N = nW * s * s.
    """
    nW = may_attend.shape[0]
    N = nW * sample_size * sample_size
    index = _semantic_index(num_windows, sample_size, key_window)
    inside = index >= 0
    mask = torch.full((nW, N + 1), -torch.inf)
    rows = torch.arange(nW)[:, None].expand_as(index)
    keep = inside & may_attend
    mask[rows[keep], index[keep]] = 0.
    padded = (~inside & may_attend).sum(dim=1)
    mask[:, N] = torch.where(padded > 0, padded.float().log(),
                             torch.tensor(-torch.inf))
    return mask


def _semantic_index(num_windows, sample_size, key_window) -> Tensor:
    """(nW, k*k) neighbourhood index into the semantic tokens in window
    order, -1 outside the semantic grid."""
    N = num_windows[0] * num_windows[1] * sample_size * sample_size
    order = _windows_to_grid(torch.arange(N).reshape(-1, sample_size**2),
                             num_windows, sample_size)
    return _neighbourhood_index(order, key_window, sample_size)


def _semantic_validity(size, pads, window_size, sample_size) -> Tensor:
    """Semantic tokens whose pooling region holds a real image token,
    laid out as (nW, s*s) in window order."""
    H, W = size
    nWh, nWw = (H + pads[0]) // window_size, (W + pads[1]) // window_size
    starts = torch.tensor(
        [b[0] for b in adaptive_pool_bounds(window_size, sample_size)])
    rows = (torch.arange(nWh)[:, None] * window_size + starts[None]) < H
    cols = (torch.arange(nWw)[:, None] * window_size + starts[None]) < W
    valid = rows[:, None, :, None] & cols[None, :, None, :]  # nWh nWw s s
    return valid.reshape(nWh * nWw, sample_size * sample_size)


def token_windows(size, window_size, num_windows, device=None) -> Tensor:
    """(H*W, ) index of the window each image token (raster order) lies
    in; ``size`` may hold symbolic ints (graph capture)."""
    rows = torch.arange(size[0], device=device) // window_size
    cols = torch.arange(size[1], device=device) // window_size
    return (rows[:, None] * num_windows[1] + cols[None, :]).reshape(-1)


def _windows_to_grid(tokens: Tensor, num_windows, sample_size) -> Tensor:
    nWh, nWw = num_windows
    grid = tokens.reshape(nWh, nWw, sample_size, sample_size)
    return grid.permute(0, 2, 1, 3).reshape(nWh * sample_size,
                                            nWw * sample_size)


@lru_cache(maxsize=32)
def _stage_geometry_cpu(size, window_size, sample_size, semantic_key_windows,
                        recovery_key_window, pad_mask) -> StageGeometry:
    H, W = size
    pads = ((window_size - H % window_size) % window_size,
            (window_size - W % window_size) % window_size)
    padded = (H + pads[0], W + pads[1])
    num_windows = (padded[0] // window_size, padded[1] // window_size)
    semantic_grid = (num_windows[0] * sample_size,
                     num_windows[1] * sample_size)
    if pad_mask == 'official':
        semantic_masks = tuple(
            _official_key_mask(padded, pads, k, window_size)
            for k in semantic_key_windows)
        recovery = _official_key_mask(semantic_grid, pads,
                                      recovery_key_window, sample_size)
        # The released code attends to every semantic token.
        semantic_valid = torch.ones(num_windows[0] * num_windows[1],
                                    sample_size * sample_size,
                                    dtype=torch.bool)
    else:
        real = torch.zeros(padded, dtype=torch.bool)
        real[:H, :W] = True
        semantic_masks = tuple(
            _exact_key_mask(real, k, window_size)
            for k in semantic_key_windows)
        semantic_valid = _semantic_validity(size, pads, window_size,
                                            sample_size)
        valid_grid = _windows_to_grid(semantic_valid, num_windows,
                                      sample_size)
        recovery = _exact_key_mask(valid_grid, recovery_key_window,
                                   sample_size)
    num_semantic = semantic_grid[0] * semantic_grid[1]
    dense = prefers_dense_recovery(num_semantic, recovery_key_window)
    recovery_index = recovery_windows = None
    if dense:
        recovery_windows = token_windows(size, window_size, num_windows)
        recovery_mask = _dense_recovery_mask(recovery, num_windows,
                                             sample_size,
                                             recovery_key_window)[:, None,
                                                                  None]
    else:
        recovery_mask = _as_attn_mask(recovery)
        recovery_index = _semantic_index(num_windows, sample_size,
                                         recovery_key_window)
        recovery_index = recovery_index.masked_fill(recovery_index < 0,
                                                    num_semantic)
    return StageGeometry(
        size=size,
        sample_window_size=sample_size,
        pads=pads,
        num_windows=num_windows,
        semantic_masks=tuple(_as_attn_mask(m) for m in semantic_masks),
        semantic_plans=tuple(
            strip_plan(m, num_windows, window_size, k)
            for m, k in zip(semantic_masks, semantic_key_windows)),
        recovery_mask=recovery_mask,
        recovery_dense=dense,
        recovery_windows=recovery_windows,
        semantic_index=tuple(
            _image_index(size, padded, k, window_size)
            for k in semantic_key_windows),
        recovery_index=recovery_index,
        local_mask=_as_attn_mask(semantic_valid),
        global_mask=_as_attn_mask(semantic_valid.reshape(1, -1)))


@lru_cache(maxsize=32)
def stage_geometry(size: Tuple[int, int], window_size: int, sample_size: int,
                   semantic_key_windows: Tuple[int, ...],
                   recovery_key_window: int, pad_mask: str,
                   device: torch.device) -> StageGeometry:
    """Build (once per input size and device) the sparsified stage's pads,
    window counts and key masks.

    Args:
        size (tuple[int, int]): Image-token grid (H, W) entering the stage.
        window_size (int): Window side (7).
        sample_size (int): Semantic tokens per window side (s).
        semantic_key_windows (tuple[int]): Key neighbourhoods of the
            generation steps, in image tokens.
        recovery_key_window (int): Key neighbourhood of the recovery block,
            in semantic tokens.
        pad_mask (str): ``'official'`` or ``'exact'``.
        device (torch.device): Where the masks live.

    Returns:
        StageGeometry: The cached geometry.
    """
    geo = _stage_geometry_cpu(size, window_size, sample_size,
                              semantic_key_windows, recovery_key_window,
                              pad_mask)

    def move(mask):
        return None if mask is None else mask.to(device)

    return StageGeometry(
        size=geo.size,
        sample_window_size=geo.sample_window_size,
        pads=geo.pads,
        num_windows=geo.num_windows,
        semantic_masks=tuple(move(m) for m in geo.semantic_masks),
        recovery_mask=move(geo.recovery_mask),
        local_mask=move(geo.local_mask),
        global_mask=move(geo.global_mask),
        recovery_dense=geo.recovery_dense,
        recovery_windows=move(geo.recovery_windows),
        semantic_index=tuple(move(i) for i in geo.semantic_index),
        semantic_plans=tuple(p.to(device) for p in geo.semantic_plans),
        recovery_index=move(geo.recovery_index))
