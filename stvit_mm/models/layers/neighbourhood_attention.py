"""One neighbourhood attention: each window's queries attend to the k x k
neighbourhood of keys around their window, keys and values projected once
per token. Three named backends compute it, with the same numbers:

- ``'strips'`` (:mod:`.strip_attention`): the key/value map read as
  overlapping strips of whole windows by the fused CPU flash kernel, merged
  by their log-sum-exps, with its own key-side backward. CPU (and meta)
  only, no attention dropout, no graph capture.
- ``'key_windows'`` (:mod:`.key_windows`): plain ops on any device, under
  graph capture and with autograd; each map window meets the queries that
  see it, and no key or value is copied per window.
- ``'gather'`` (:mod:`.neighbourhoods`): each window's keys and values cut
  out of the projected tokens (a (k / w)**2 copy, 4x for k = 14, 9x for
  k = 21, kept for the backward pass) and attended by
  ``scaled_dot_product_attention``. The reference the other two are tested
  against.

``'auto'`` (:func:`choose_backend`) means strips for CPU eager runs,
key_windows under graph capture, and :data:`CUDA_BACKEND` on CUDA. Where
the named backend cannot serve a call it is routed explicitly, never
silently to a different result: strips with attention dropout in training
run as key_windows (dropout on the same probabilities), and strips under
graph capture as key_windows (the private kernel has no export).

The recovery block's choice between attending to all semantic tokens and
gathering a neighbourhood per window (:func:`prefers_dense_recovery`) is
made here too; it depends on the size only, so the per-size geometry
records it.
"""
import math
from typing import Optional

import torch
from torch import Tensor, nn

from .capture import exporting
from .key_windows import attend_by_key_windows
from .neighbourhoods import gather_neighbourhoods
from .recompute import maybe_recompute
from .strip_attention import strip_attention, strips_available, window_kv_map

#: What ``STViTRSwin(neighbourhood_impl=...)`` accepts.
NEIGHBOURHOOD_IMPLS = ('auto', 'strips', 'key_windows', 'gather')

#: ``'auto'``'s backend on CUDA. The gather is what CUDA has always run:
#: no GPU run has yet timed the backends against each other (
#: ``tools/analysis/gpu_report.sh`` does, fp32 and bf16, inference and
#: training, with peak memory); on the CPU key_windows needs less training
#: memory than the gather, and CUDA's choice follows that run's figures.
CUDA_BACKEND = 'gather'

# Dense recovery attention does (N + 1) / k**2 times the gathered version's
# attention math; below this ratio avoiding the gather more than pays for it.
# Measured on 2 CPU cores (STViT-R-Swin-S, the recovery blocks' time, dense vs
# gathered): 0.61x at a ratio of 1.8, 0.62x at 2.1, 0.79x at 2.7, 0.85x at 3.2,
# 1.16x at 4.7.
DENSE_RECOVERY_MAX_RATIO = 3.0


def check_neighbourhood_impl(impl: str) -> str:
    """Return ``impl`` if it is one of :data:`NEIGHBOURHOOD_IMPLS`.

    Raises:
        ValueError: One line naming the allowed values.
    """
    if impl not in NEIGHBOURHOOD_IMPLS:
        raise ValueError(f'neighbourhood_impl must be one of '
                         f'{NEIGHBOURHOOD_IMPLS}, got {impl!r}')
    return impl


def choose_backend(impl: str, device_type: str, dropout: bool) -> str:
    """The backend that serves one call.

    Args:
        impl (str): One of :data:`NEIGHBOURHOOD_IMPLS`.
        device_type (str): Where the call runs (``'cpu'``, ``'cuda'``,
            ...): it decides ``'auto'``.
        dropout (bool): Attention dropout is on (training, rate > 0).

    Returns:
        str: ``'strips'``, ``'key_windows'`` or ``'gather'``.

    Raises:
        ValueError: ``'strips'`` asked for on a device it cannot run on.
    """
    if impl == 'auto':
        if exporting():
            return 'key_windows'
        if device_type == 'cuda':
            return CUDA_BACKEND
        impl = 'strips' if strips_available(device_type) else 'key_windows'
    if impl == 'strips' and (dropout or exporting()):
        # The strip merge has no dropout, the private kernel no export.
        return 'key_windows'
    if impl == 'strips' and not strips_available(device_type):
        raise ValueError(
            "neighbourhood_impl='strips' runs on the CPU only (the fused "
            f"CPU flash kernel), not on {device_type}; use 'key_windows', "
            "'gather' or 'auto'")
    return impl


def neighbourhood_attention(backend: str, attn: nn.Module, queries: Tensor,
                            normed: Tensor, padded: Tensor, geo,
                            step: int, window_size: int) -> Tensor:
    """Queries of every window attend to their window's neighbourhood of
    image tokens (a generation step), output projection included.

    Args:
        backend (str): ``'strips'``, ``'key_windows'`` or ``'gather'``
            (:func:`choose_backend`).
        attn (TokenAttention): The block's projections (``q``, ``kv``,
            ``proj``), heads and attention dropout.
        queries (Tensor): (B, nW, Nq, C) normed query tokens.
        normed (Tensor): (B, H, W, C) normed image tokens (keys/values).
        padded (Tensor): (C, ) the normed padded token, norm1(0): what a
            neighbourhood position outside the image holds.
        geo (StageGeometry): Masks, indices and strip plans of the size.
        step (int): Generation step (0 or 1): which neighbourhood.
        window_size (int): Window side w.

    Returns:
        Tensor: (B, nW, Nq, C).
    """
    fill = attn.kv(padded)
    mask = geo.semantic_masks[step]
    if backend == 'gather':
        keys, values = gather_neighbourhoods(
            attn.kv(normed).flatten(1, 2), fill, geo.semantic_index[step],
            attn.num_heads)
        return attn(queries, keys, values, mask)
    q = attn.project_q(queries)
    if backend == 'strips':
        plan = geo.semantic_plans[step]
        kv_map = window_kv_map(attn.kv(normed), fill, geo.num_windows,
                               window_size, plan)
        per_head = strip_attention(q, kv_map, plan, geo.num_windows)
    elif backend == 'key_windows':
        key_window = math.isqrt(geo.semantic_index[step].shape[-1])
        dropout = attn.attn_drop_rate if attn.training else 0.
        # Recomputed in the backward pass: the logits and probabilities in
        # their two layouts are several times the size of the keys, and
        # storing them made key_windows the hungriest backend in training.
        per_head = maybe_recompute(
            attend_by_key_windows, not exporting(),
            q, normed - padded, attn.kv.weight, fill,
            _open_mask(mask, q.shape[1], key_window, q.device),
            geo.num_windows,
            window_size, key_window, dropout)
    else:
        raise ValueError(f'unknown neighbourhood backend {backend!r}; one of '
                         f'{NEIGHBOURHOOD_IMPLS[1:]}')
    B, nW, _, N, _ = per_head.shape
    return attn.project_out(per_head.transpose(2, 3).reshape(B, nW, N, -1))


def _open_mask(mask: Optional[Tensor], num_windows: int, key_window: int,
               device) -> Tensor:
    """The additive (nW, 1, 1, k*k) key mask; eager geometry passes None
    where every key takes part, the key-window form needs the zeros."""
    if mask is not None:
        return mask
    return torch.zeros(num_windows, 1, 1, key_window * key_window,
                       device=device)


def prefers_dense_recovery(num_semantic: int, key_window: int) -> bool:
    """Whether the recovery block should attend to all ``num_semantic``
    semantic tokens (plus the folded padding key) rather than gather a
    ``key_window`` square neighbourhood per window: the same numbers, and
    less work when the neighbourhood covers most of the grid."""
    return num_semantic + 1 <= DENSE_RECOVERY_MAX_RATIO * key_window**2
