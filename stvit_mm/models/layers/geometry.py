"""What STViT-R's sparsified stage computes from the input size alone.

The semantic-token generation steps and the recovery block attend from a
window to an overlapping neighbourhood around it. Which keys of a
neighbourhood are padding, and therefore masked, depends on the feature-map
size alone. One builder computes it from tensor ops of the size
(:mod:`.export_geometry`): inside a captured graph from the symbolic size
(``torch.export``, ONNX), in eager runs from the ints of each size, once
(:func:`stage_geometry`, cached and shared by every block of every dumbbell
unit).

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
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

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


def token_windows(size, window_size, num_windows, device=None) -> Tensor:
    """(H*W, ) index of the window each image token (raster order) lies
    in; ``size`` may hold symbolic ints (graph capture)."""
    rows = torch.arange(size[0], device=device) // window_size
    cols = torch.arange(size[1], device=device) // window_size
    return (rows[:, None] * num_windows[1] + cols[None, :]).reshape(-1)


def _open_to_none(mask: Optional[Tensor]) -> Optional[Tensor]:
    """None for a mask that masks nothing (the fused CPU kernel is fastest
    without one), else the mask."""
    return mask if mask is not None and bool(mask.any()) else None


@lru_cache(maxsize=32)
def _stage_geometry_cpu(size, window_size, sample_size, semantic_key_windows,
                        recovery_key_window, pad_mask) -> StageGeometry:
    """The export's builder run on ints, plus the eager-only parts: open
    masks as None and the strip plans."""
    # export_geometry builds a StageGeometry of this module: imported here.
    from .export_geometry import traced_stage_geometry
    geo = traced_stage_geometry(size, window_size, sample_size,
                                semantic_key_windows, recovery_key_window,
                                pad_mask, torch.device('cpu'))
    plans = tuple(
        strip_plan(mask[:, 0, 0] == 0, geo.num_windows, window_size, k)
        for mask, k in zip(geo.semantic_masks, semantic_key_windows))
    return replace(
        geo, semantic_masks=tuple(map(_open_to_none, geo.semantic_masks)),
        recovery_mask=(geo.recovery_mask if geo.recovery_dense else
                       _open_to_none(geo.recovery_mask)),
        local_mask=_open_to_none(geo.local_mask),
        global_mask=_open_to_none(geo.global_mask), semantic_plans=plans)


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
