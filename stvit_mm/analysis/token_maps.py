"""Where STViT-R-Swin's semantic tokens look: the attention weights of one
dumbbell unit's token generation and recovery, read from a real forward.

The blocks' inputs are recorded by forward pre-hooks while the backbone
runs (:func:`record_unit`); the weights are then computed from those inputs
with the blocks' own norms and projections, on the gathered form of the
attention (the one CUDA runs), so every path of the model gives the same
maps. :func:`generation_weights` and :func:`recovery_weights` return per-head
weights, from which the blocks' outputs can be recomputed exactly: that is
how the tests tie the pictures to what the model computes.

Two unit types exist (:mod:`stvit_mm.models.layers.dumbbell`):

* detection / segmentation: two generation steps over 14x14 and 21x21
  image-token neighbourhoods, and recovery of each image token from a 27x27
  neighbourhood of semantic tokens;
* the ImageNet classifier: one generation step whose keys are the pooled
  tokens and a 10x10 image-token neighbourhood, and image tokens that read
  back from all semantic tokens.
"""
import contextlib
import dataclasses
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..models.layers.geometry import adaptive_pool_bounds
from ..models.layers.imagenet_unit import ReleaseImageNetUnit, _ranges
from ..models.layers.neighbourhoods import gather_neighbourhoods
from ..models.layers.semantic import max_pool_windows

__all__ = [
    'UnitRecord', 'NeighbourhoodMap', 'find_stvit_backbone', 'record_unit',
    'generation_weights', 'generation_maps', 'recovery_weights',
    'semantic_cells'
]


def find_stvit_backbone(model: nn.Module) -> Optional[nn.Module]:
    """The first STViT-R-Swin module in ``model`` (itself included)."""
    from ..models.backbones.stvit_r_swin import STViTRSwin
    return next((m for m in model.modules() if isinstance(m, STViTRSwin)),
                None)


@dataclasses.dataclass
class UnitRecord:
    """The inputs one dumbbell unit's blocks received in a forward.

    Attributes:
        unit (nn.Module): The unit (its blocks compute the weights).
        window_size (int): Image window side w, in stage-3 tokens.
        generation (list[tuple]): Positional inputs of each generation step.
        recovery (tuple): Positional inputs of the recovery block.
    """
    unit: nn.Module
    window_size: int
    generation: List[tuple] = dataclasses.field(default_factory=list)
    recovery: tuple = ()

    @property
    def imagenet(self) -> bool:
        """Whether this is the classifier's unit (one generation step)."""
        return isinstance(self.unit, ReleaseImageNetUnit)

    @property
    def image(self) -> Tensor:
        """(B, H, W, C) image tokens entering token generation."""
        return self.generation[0][0]

    @property
    def geometry(self):
        """The stage's :class:`~stvit_mm.models.layers.geometry.
        StageGeometry` (the detection unit's blocks receive it)."""
        return next(a for a in self.generation[0] if hasattr(a, 'pads'))


@contextlib.contextmanager
def record_unit(backbone: nn.Module, unit_index: int) -> Iterator[UnitRecord]:
    """Record the inputs of one unit's generation and recovery blocks while
    the backbone runs inside the ``with``.

    Args:
        backbone (nn.Module): An STViT-R-Swin backbone.
        unit_index (int): Which dumbbell unit of stage 3 (0-based).

    Yields:
        UnitRecord: Filled once the backbone has run.

    Raises:
        IndexError: If the stage has no such unit.
    """
    from ..models.backbones.release_weights import SPARSIFIED_STAGE
    stage = backbone.stages[SPARSIFIED_STAGE]
    if not 0 <= unit_index < len(stage.units):
        raise IndexError(f'unit {unit_index}: stage 3 has '
                         f'{len(stage.units)} unit(s), 0..'
                         f'{len(stage.units) - 1}')
    unit = stage.units[unit_index]
    record = UnitRecord(unit, stage.window_size)
    imagenet = record.imagenet
    blocks = unit.generate[:1] if imagenet else unit.generate

    def keep_generation(module, args):
        record.generation.append(tuple(args))

    def keep_recovery(module, args):
        record.recovery = tuple(args)

    handles = [b.register_forward_pre_hook(keep_generation) for b in blocks]
    handles.append(unit.recovery_block.register_forward_pre_hook(
        keep_recovery))
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def _attention_inputs(block: nn.Module, *args) -> tuple:
    """What ``block`` passes to its attention (queries, keys, values,
    mask) when it runs on ``args``."""
    seen = []
    handle = block.attn.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs))
    try:
        block(*args)
    finally:
        handle.remove()
    return seen[0]


def _softmax(q: Tensor, keys: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Per-head attention weights of ``scaled_dot_product_attention``."""
    logits = q @ keys.transpose(-1, -2) * q.shape[-1]**-0.5
    if mask is not None:
        logits = logits + mask.to(logits.dtype)
    return logits.softmax(dim=-1)


@torch.no_grad()
def generation_weights(record: UnitRecord, step: int) -> Tuple[Tensor,
                                                              Tensor]:
    """Attention of each semantic token over its generation keys.

    Args:
        record (UnitRecord): From :func:`record_unit`.
        step (int): Generation step, 0 or 1 (only 0 for the classifier).

    Returns:
        tuple[Tensor, Tensor]: Per-head weights (B, nW, heads, s*s, K) and
        the values they average, (B, nW, heads, K, C // heads). Detection:
        K = k*k neighbourhood keys in raster order. Classifier: the s*s
        pooled tokens first, then the 10x10 neighbourhood.
    """
    block = record.unit.generate[step]
    if record.imagenet:
        # Its keys (pooled tokens + neighbourhood) and mask, as the block
        # hands them to its attention.
        queries, keys, values, mask = _attention_inputs(
            block, *record.generation[0])
    else:
        image, semantic, geo, _ = record.generation[step]
        if semantic is None:
            semantic = max_pool_windows(image, block.window_size,
                                        geo.sample_window_size,
                                        block.pool_pad_value)
        queries = block.norm1(semantic)
        keys, values = gather_neighbourhoods(
            block.attn.kv(block.norm1(image)).flatten(1, 2),
            block.padded_kv(image), geo.semantic_index[step],
            block.attn.num_heads)
        mask = geo.semantic_masks[step]
    return _softmax(block.attn.project_q(queries), keys, mask), values


@dataclasses.dataclass
class NeighbourhoodMap:
    """One window's generation attention laid out over the image tokens.

    Attributes:
        weights (Tensor): (s*s, k, k) head-averaged weight of each semantic
            token on each neighbourhood position.
        origin (tuple[int, int]): Stage-3 token row and column of the
            neighbourhood's top-left position (negative: padding).
        other (Tensor): (s*s,) weight left on keys outside the picture
            (the classifier's pooled-token keys); zeros otherwise.
    """
    weights: Tensor
    origin: Tuple[int, int]
    other: Tensor


def generation_maps(record: UnitRecord, window: Tuple[int, int]
                    ) -> List[NeighbourhoodMap]:
    """Each step's head-averaged attention of one window's semantic tokens,
    as k x k maps placed on the stage-3 token grid.

    Args:
        record (UnitRecord): From :func:`record_unit` (batch item 0 drawn).
        window (tuple[int, int]): Window row and column.

    Returns:
        list[NeighbourhoodMap]: One per generation step.
    """
    from ..models.layers.geometry import neighbourhood_padding
    geo, w = record.geometry, record.window_size
    nWh, nWw = geo.num_windows
    index = window[0] * nWw + window[1]
    maps = []
    for step in range(len(record.generation) if not record.imagenet else 1):
        weights = generation_weights(record, step)[0][0, index].mean(0)
        if record.imagenet:
            block = record.unit.generate[0]
            rows = _ranges(nWh * w, w, block.key_window, weights.device)
            cols = _ranges(nWw * w, w, block.key_window, weights.device)
            origin = (int(rows[window[0], 0]), int(cols[window[1], 0]))
            N = weights.shape[0]
            side = rows.shape[1]
            maps.append(NeighbourhoodMap(
                weights[:, N:].reshape(N, side, cols.shape[1]), origin,
                weights[:, :N].sum(-1)))
            continue
        k = int(round(weights.shape[-1]**0.5))
        before = neighbourhood_padding(k, w)[0]
        maps.append(NeighbourhoodMap(
            weights.reshape(-1, k, k),
            (window[0] * w - before, window[1] * w - before),
            weights.new_zeros(weights.shape[0])))
    return maps


def _semantic_tokens(record: UnitRecord) -> Tensor:
    """(B, nW * s*s, C) semantic tokens the recovery block reads."""
    args = record.recovery
    semantic = args[1]
    return semantic.flatten(1, 2) if semantic.dim() == 4 else semantic


@torch.no_grad()
def recovery_weights(record: UnitRecord, tokens: List[Tuple[int, int]]
                     ) -> Tuple[Tensor, Tensor]:
    """Attention of some image tokens over all semantic tokens in the
    recovery block.

    Args:
        record (UnitRecord): From :func:`record_unit`.
        tokens (list[tuple[int, int]]): Stage-3 (row, col) of the queries.

    Returns:
        tuple[Tensor, Tensor]: Per-head weights (B, heads, Q, M + 1) over
        the M semantic tokens in window order plus one padded key (whose
        weight is that of all padded neighbourhood positions together;
        always 0 for the classifier), and the values
        (B, heads, M + 1, C // heads) they average.
    """
    block = record.unit.recovery_block
    image = record.image
    B, H, W, C = image.shape
    w = record.window_size
    nWw = -(-W // w)
    rows = torch.tensor([r for r, _ in tokens])
    cols = torch.tensor([c for _, c in tokens])
    queries = block.norm1(image[:, rows, cols])[:, None]  # B 1 Q C
    if record.imagenet:
        semantic = _semantic_tokens(record)
        mask = record.recovery[2]
        tokens_ = torch.cat([semantic, semantic.new_zeros(B, 1, C)], 1)
        keys, values = block.attn.split_kv(block.norm1(tokens_)[:, None])
        # No padded key here: its slot gets weight 0.
        pad = torch.full((1, 1, 1, 1), -torch.inf)
        if mask is None:
            mask = pad.new_zeros(1, 1, 1, semantic.shape[1])
        mask = torch.cat([mask.to(pad), pad], -1)
        weights = _softmax(block.attn.project_q(queries), keys, mask)
        return weights[:, 0], values[:, 0]
    geo = record.geometry
    semantic = record.recovery[1]
    M = semantic.shape[1] * semantic.shape[2]
    keys, values = block.dense_kv(semantic)  # B 1 h M+1 d
    q = block.attn.project_q(queries)
    windows = (rows // w) * nWw + cols // w
    if geo.recovery_dense:
        mask = geo.recovery_mask[windows, 0, 0][None, None]  # 1 1 Q M+1
        return _softmax(q, keys, mask)[:, 0], values[:, 0]
    # Gathered neighbourhoods: the weights of positions that hold the same
    # semantic token (or padding) are summed into that token's slot.
    nb_keys, _ = gather_neighbourhoods(
        block.attn.kv(block.norm1(semantic.flatten(1, 2))),
        block.padded_kv(semantic), geo.recovery_index, block.attn.num_heads)
    mask = geo.recovery_mask
    out = q.new_zeros(B, q.shape[2], len(tokens), M + 1)
    for i, win in enumerate(windows.tolist()):
        part = _softmax(q[:, 0, :, i:i + 1], nb_keys[:, win],
                        None if mask is None else mask[win])
        out[:, :, i].index_add_(-1, geo.recovery_index[win], part[:, :, 0])
    return out, values[:, 0]


def semantic_cells(record: UnitRecord) -> Tuple[Tensor, Tensor]:
    """Stage-3 token rows and columns each semantic token was pooled from.

    Returns:
        tuple[Tensor, Tensor]: (M, 2) [start, end) rows and columns, M
        semantic tokens in window order (window by window, s*s each).
    """
    image = record.image
    H, W = image.shape[1:3]
    w = record.window_size
    s = record.geometry.sample_window_size
    nWh, nWw = -(-H // w), -(-W // w)
    bounds = torch.tensor(adaptive_pool_bounds(w, s))  # s, 2
    wr = torch.arange(nWh).repeat_interleave(nWw)
    wc = torch.arange(nWw).repeat(nWh)
    ir = torch.arange(s).repeat_interleave(s)
    ic = torch.arange(s).repeat(s)
    rows = wr[:, None, None] * w + bounds[ir][None]  # nW, s*s, 2
    cols = wc[:, None, None] * w + bounds[ic][None]
    return rows.reshape(-1, 2), cols.reshape(-1, 2)
