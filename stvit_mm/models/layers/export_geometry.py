"""The sparsified stage's geometry built from tensor ops of the input size:
the one builder, for graph capture (``torch.export``, ``torch.onnx.export``)
and, called on ints, for eager's per-size cache.

A captured graph must serve every size, so the pads, indices and masks of
:class:`~.geometry.StageGeometry` are computed from the (symbolic) height
and width, with no Python branch on a size or on a tensor value. Eager runs
call the same functions on the ints of each size, once
(:func:`~.geometry.stage_geometry` caches the result, turns masks that mask
nothing into None and adds the strip plans):

- the key masks of the generation and recovery steps are always tensors
  (all zero where eager passes ``None``);
- the recovery block attends densely or gathers a neighbourhood per window
  as eager does for the *example* input's size (both forms give the same
  numbers at every size; the choice only sets which is cheaper);
- the generation steps take :mod:`.key_windows`' plain ops (eager CPU
  runs take the whole-window strips of :mod:`.strip_attention`, built on a
  private CPU kernel; see :mod:`.neighbourhood_attention`).
"""
import torch
from torch import Tensor
from torch.fx.experimental.symbolic_shapes import optimization_hint

from .geometry import (StageGeometry, adaptive_pool_bounds,
                       neighbourhood_padding, token_windows)
from .neighbourhood_attention import prefers_dense_recovery


def _positions(num_windows, stride: int, key_window: int, device) -> Tensor:
    """(num_windows, k) grid positions along one axis that each window's
    neighbourhood covers (negative or past the end outside the grid)."""
    before, _ = neighbourhood_padding(key_window, stride)
    starts = torch.arange(num_windows, device=device) * stride - before
    return starts[:, None] + torch.arange(key_window, device=device)


def _outer(rows: Tensor, cols: Tensor, op=torch.logical_and) -> Tensor:
    """(nWh, k) and (nWw, k) per-axis terms -> (nWh*nWw, k*k) per key,
    combined by ``op``. (Few graph nodes: export time grows with them.)"""
    k = rows.shape[1]
    both = op(rows.reshape(-1, 1, k, 1), cols.reshape(1, -1, 1, k))
    return both.reshape(-1, k * k)


def _attend_official(pos_r, pos_c, inside, grid, pads, no_pad) -> Tensor:
    """Bool (nW, k*k) keys the released code lets each window see: those
    on the (padded) ``grid`` outside its ``mask[-pad_b:, -pad_r:]``, a
    slice that covers a whole axis when that pad is 0 (``no_pad``)."""
    masked_r = (pos_r >= grid[0] - pads[0]) | no_pad[0]
    masked_c = (pos_c >= grid[1] - pads[1]) | no_pad[1]
    may_attend = inside & ~_outer(masked_r, masked_c)
    # All keys at -1000 is a uniform shift that softmax ignores.
    return may_attend | ~may_attend.any(dim=1, keepdim=True)


def _additive(may_attend: Tensor) -> Tensor:
    """(G, N) bool -> additive (G, 1, 1, N) 0/-inf mask."""
    return torch.where(may_attend, 0., -torch.inf)[:, None, None, :]


def _semantic_valid(pos: Tensor, size, window_size: int, sample_size: int,
                    device) -> Tensor:
    """Whether semantic-grid positions ``pos`` (along one axis) were pooled
    from at least one real image token (and lie on the grid at all)."""
    starts = torch.tensor(
        [b[0] for b in adaptive_pool_bounds(window_size, sample_size)],
        device=device)
    first = (pos // sample_size) * window_size + starts[
        pos.remainder(sample_size)]
    return (pos >= 0) & (first < size)


def _dense_recovery(pos_r: Tensor, pos_c: Tensor, grid, pads, no_pad,
                    valid, sample_size: int, key_window: int,
                    device) -> Tensor:
    """Additive (nW, 1, 1, N + 1) mask of the dense recovery: each window's
    neighbourhood as a row over all N semantic tokens (window order) plus
    one folded padding key (n padded keys of the released code hold the same
    vector: one key with its logit raised by log(n) contributes the same).

    Args:
        pos_r, pos_c (Tensor): (nWh, k), (nWw, k) neighbourhood positions.
        grid (tuple): Semantic grid (nWh * s, nWw * s).
        pads (tuple): The image tokens' pads (official mode).
        no_pad (tuple[Tensor] | None): Whether each pad is 0 (official
            mode), None in exact mode.
        valid (tuple[Tensor] | None): Per-axis validity of the grid's rows
            and columns (exact mode), None in official mode.
        sample_size (int): s.
        key_window (int): k, in semantic tokens.
        device (torch.device): Where the mask lives.
    """
    rows = torch.arange(grid[0], device=device)
    cols = torch.arange(grid[1], device=device)
    near_r = (rows >= pos_r[:, :1]) & (rows <= pos_r[:, -1:])
    near_c = (cols >= pos_c[:, :1]) & (cols <= pos_c[:, -1:])
    # (nWh, nWw, grid rows, grid columns)
    near = near_r[:, None, :, None] & near_c[None, :, None, :]
    if no_pad is not None:
        masked = (((rows >= grid[0] - pads[0]) | no_pad[0])[:, None]
                  & ((cols >= grid[1] - pads[1]) | no_pad[1])[None, :])
        attend = near & ~masked
        # The released -1000 on every key: all keys, padding included.
        blind = ~attend.flatten(2).any(dim=2)
        attend = attend | (near & blind[:, :, None, None])
        outside = (key_window * key_window -
                   near_r.sum(1)[:, None] * near_c.sum(1)[None, :])
        padded = torch.where(blind, outside, 0)
    else:
        attend = near & (valid[0][:, None] & valid[1][None, :])
        padded = torch.zeros(near.shape[:2], dtype=torch.long, device=device)
    nWh, nWw = near.shape[:2]
    s = sample_size
    attend = attend.reshape(nWh * nWw, nWh, s, nWw, s).permute(
        0, 1, 3, 2, 4).reshape(nWh * nWw, -1)
    folded = torch.where(padded > 0, padded.clamp(min=1).float().log(),
                         -torch.inf)
    return torch.cat([
        torch.where(attend, 0., -torch.inf),
        folded.reshape(-1, 1)
    ], 1)[:, None, None]


def _size_hint(value) -> int:
    """The example input's value of a size: a SymInt's hint under
    ``torch.export``; TorchScript tracing (``torch.jit.trace``, which
    fvcore-style FLOP counters such as mmengine's run) hands sizes over as
    0-dim tensors instead, whose value is read without a guard there."""
    if isinstance(value, Tensor):
        return int(value.item())
    return optimization_hint(value, fallback=0)


def traced_stage_geometry(size, window_size: int, sample_size: int,
                          semantic_key_windows, recovery_key_window: int,
                          pad_mask: str, device) -> StageGeometry:
    """Build the sparsified stage's geometry from tensor ops of ``size``.

    Same arguments and meaning as :func:`~.geometry.stage_geometry`, but
    ``size`` may hold symbolic ints, nothing is cached, there are no strip
    plans, and every mask is a tensor (``local_mask``/``global_mask`` stay
    None in ``'official'`` mode, where the released code masks no semantic
    token). Whether the recovery attends densely follows the example size
    (the symbolic size's hint), without a guard on it.

    Args:
        size (tuple[int, int]): Image-token grid (H, W), ints or SymInts.
        window_size (int): Window side w.
        sample_size (int): Semantic tokens per window side s.
        semantic_key_windows (tuple[int]): Generation-step key windows.
        recovery_key_window (int): Recovery key window (semantic tokens).
        pad_mask (str): ``'official'`` or ``'exact'``.
        device (torch.device): Where the tensors live.

    Returns:
        StageGeometry: The geometry, with every index and mask a tensor.
    """
    H, W = size
    w, s = window_size, sample_size
    nWh, nWw = (H + w - 1) // w, (W + w - 1) // w
    padded = (nWh * w, nWw * w)
    pads = (padded[0] - H, padded[1] - W)
    grid = (nWh * s, nWw * s)
    num_semantic = nWh * nWw * s * s

    if pad_mask == 'official':
        no_pad = tuple(torch.full((), p, device=device) == 0 for p in pads)

    semantic_index, semantic_masks = [], []
    for k in semantic_key_windows:
        pos_r = _positions(nWh, w, k, device)
        pos_c = _positions(nWw, w, k, device)
        real = _outer((pos_r >= 0) & (pos_r < H), (pos_c >= 0) & (pos_c < W))
        flat = _outer(pos_r * W, pos_c, torch.add)
        semantic_index.append(torch.where(real, flat, H * W))
        if pad_mask == 'official':
            inside = _outer((pos_r >= 0) & (pos_r < padded[0]),
                            (pos_c >= 0) & (pos_c < padded[1]))
            semantic_masks.append(_additive(_attend_official(
                pos_r, pos_c, inside, padded, pads, no_pad)))
        else:
            semantic_masks.append(_additive(real))

    pos_r = _positions(nWh, s, recovery_key_window, device)
    pos_c = _positions(nWw, s, recovery_key_window, device)
    local_mask = global_mask = valid_axes = None
    if pad_mask == 'exact':
        token = torch.arange(s, device=device)
        valid_axes = tuple(
            _semantic_valid(torch.arange(n, device=device)[:, None] * s +
                            token, length, w, s, device).reshape(-1)
            for n, length in ((nWh, H), (nWw, W)))
        valid = _outer(valid_axes[0].reshape(nWh, s),
                       valid_axes[1].reshape(nWw, s))
        local_mask = _additive(valid)
        global_mask = _additive(valid.reshape(1, -1))
    if prefers_dense_recovery(_size_hint(num_semantic), recovery_key_window):
        return StageGeometry(
            size=(H, W), sample_window_size=s, pads=pads,
            num_windows=(nWh, nWw), semantic_masks=tuple(semantic_masks),
            recovery_mask=_dense_recovery(
                pos_r, pos_c, grid, pads,
                no_pad if pad_mask == 'official' else None, valid_axes, s,
                recovery_key_window, device),
            local_mask=local_mask, global_mask=global_mask,
            recovery_dense=True,
            recovery_windows=token_windows((H, W), w, (nWh, nWw), device),
            semantic_index=tuple(semantic_index))
    inside = _outer((pos_r >= 0) & (pos_r < grid[0]),
                    (pos_c >= 0) & (pos_c < grid[1]))
    # Semantic tokens are stored in window order: (window, row, column).
    recovery_index = torch.where(
        inside,
        _outer((pos_r // s) * (nWw * s * s) + pos_r.remainder(s) * s,
               (pos_c // s) * (s * s) + pos_c.remainder(s), torch.add),
        num_semantic)
    if pad_mask == 'official':
        recovery = _attend_official(pos_r, pos_c, inside, grid, pads,
                                    no_pad)
    else:
        recovery = inside & _outer(
            _semantic_valid(pos_r, H, w, s, device),
            _semantic_valid(pos_c, W, w, s, device))
    return StageGeometry(
        size=(H, W),
        sample_window_size=s,
        pads=pads,
        num_windows=(nWh, nWw),
        semantic_masks=tuple(semantic_masks),
        recovery_mask=_additive(recovery),
        local_mask=local_mask,
        global_mask=global_mask,
        recovery_dense=False,
        semantic_index=tuple(semantic_index),
        recovery_index=recovery_index)

