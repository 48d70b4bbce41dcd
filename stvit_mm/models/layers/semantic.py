"""The semantic-token blocks of a dumbbell unit (see :mod:`.dumbbell`).

A unit (6 blocks) runs one Swin block on all image tokens, generates s*s
semantic tokens per 7x7 window in two steps (queries: pooled/semantic tokens;
keys: a 14x14 then 21x21 neighbourhood of image tokens), runs a local and a
global block on the semantic tokens only, and recovers the full-resolution
image tokens (queries) from a 27x27 neighbourhood of semantic tokens (keys).

Semantic tokens are kept in window order, (B, nW, s*s, C): that is what the
generation steps and the local block attend in, and the global block is
order-free (no position bias). Only the recovery block needs them as a grid.

All blocks here are pre-norm with layer scale on both branches; the same
norm1 is applied to queries and keys. Keys and values are projected once per
token; the generation steps' neighbourhood attention is one call with a
named backend (:mod:`.neighbourhood_attention`), which gives the released
code's numbers at a fraction of its cost.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .capture import exporting
from .geometry import StageGeometry, adaptive_pool_bounds
from .neighbourhood_attention import (check_neighbourhood_impl,
                                      choose_backend, neighbourhood_attention)
from .neighbourhoods import gather_neighbourhoods
from .swin import merge_windows, pad_to, partition_windows
from .token_attention import LayerScaledBlock


def max_pool_windows(x: Tensor, window_size: int, sample_size: int,
                     pad_value: float) -> Tensor:
    """Adaptive max pooling of every window to s x s tokens.

    The windows are pooled as a channels-last batch, the layout the CPU
    pooling kernel is fastest on (about 30x faster than reducing strided
    views of the whole map) and the one the tokens already have.

    Args:
        x (Tensor): (B, H, W, C) image tokens.
        window_size (int): Window side w.
        sample_size (int): Pooled tokens per window side s.
        pad_value (float): What the padding to whole windows holds; 0 in the
            released code, -inf to keep padding out of the max.

    Returns:
        Tensor: (B, nW, s*s, C) semantic tokens in window order.
    """
    B, H, W, C = x.shape
    x = F.pad(x, (0, 0, 0, pad_to(W, window_size), 0,
                  pad_to(H, window_size)), value=pad_value)
    windows = partition_windows(x, window_size)
    nW = windows.shape[1]
    if exporting():
        pooled = _binned_max(windows.reshape(B, nW, window_size, window_size,
                                             C), sample_size)
    else:
        windows = windows.reshape(B * nW, window_size, window_size, C)
        pooled = F.adaptive_max_pool2d(windows.permute(0, 3, 1, 2),
                                       sample_size).permute(0, 2, 3, 1)
    pooled = pooled.reshape(B, nW, sample_size * sample_size, C)
    # Pooling regions made only of -inf padding hold no information.
    return torch.nan_to_num(pooled, neginf=0.) if pad_value < 0 else pooled


def _binned_max(windows: Tensor, sample_size: int) -> Tensor:
    """``adaptive_max_pool2d`` of (B, nW, w, w, C) windows to s x s, as
    one max over each (static, possibly overlapping) bin of rows, then of
    columns: the same numbers, from ops every exporter knows.

    Returns:
        Tensor: (B, nW, s, s, C).
    """
    bins = adaptive_pool_bounds(windows.shape[2], sample_size)
    rows = torch.stack([windows[:, :, a:b].amax(dim=2) for a, b in bins], 2)
    return torch.stack([rows[:, :, :, a:b].amax(dim=3) for a, b in bins], 3)


class TokenGenerationBlock(LayerScaledBlock):
    """One STGM step: semantic tokens (queries) attend to a neighbourhood of
    image tokens (keys/values) around their window.

    The first step pools its queries from the image tokens; the second takes
    the first step's output. The residual is the query tokens themselves.

    Args:
        window_size (int): Image window side w.
        pool_pad_value (float): Value of the window padding during pooling.
        neighbourhood_impl (str): Backend of the neighbourhood attention,
            one of :data:`~.neighbourhood_attention.NEIGHBOURHOOD_IMPLS`.
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, window_size: int, pool_pad_value: float = 0.,
                 neighbourhood_impl: str = 'auto', **kwargs):
        super().__init__(**kwargs)
        self.window_size = window_size
        self.pool_pad_value = pool_pad_value
        self.neighbourhood_impl = check_neighbourhood_impl(neighbourhood_impl)

    def forward(self, image: Tensor, semantic: Optional[Tensor],
                geo: StageGeometry, step: int) -> Tensor:
        """
        Args:
            image (Tensor): (B, H, W, C) image tokens.
            semantic (Tensor, optional): (B, nW, s*s, C) query tokens; None
                to pool them from ``image``.
            geo (StageGeometry): Neighbourhood indices, masks and plans.
            step (int): Which generation step this is (0 or 1).

        Returns:
            Tensor: (B, nW, s*s, C) semantic tokens.
        """
        if semantic is None:
            semantic = max_pool_windows(image, self.window_size,
                                        geo.sample_window_size,
                                        self.pool_pad_value)
        dropout = bool(self.training and self.attn.attn_drop_rate)
        backend = choose_backend(self.neighbourhood_impl, image.device.type,
                                 dropout)
        attended = neighbourhood_attention(
            backend, self.attn, self.norm1(semantic), self.norm1(image),
            self.padded_token(image), geo, step, self.window_size)
        return self.residual(semantic, attended)


class SemanticBlock(LayerScaledBlock):
    """Self-attention among semantic tokens: within each window's s*s tokens
    (``local=True``) or over all of them.

    Args:
        local (bool): Attend within windows instead of globally.
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, local: bool, **kwargs):
        super().__init__(**kwargs)
        self.local = local

    def forward(self, semantic: Tensor, geo: StageGeometry) -> Tensor:
        """
        Args:
            semantic (Tensor): (B, nW, s*s, C).
            geo (StageGeometry): Masks of tokens pooled from padding alone.

        Returns:
            Tensor: (B, nW, s*s, C).
        """
        B, nW, N, C = semantic.shape
        groups = semantic if self.local else semantic.reshape(B, 1, nW * N, C)
        normed = self.norm1(groups)
        keys, values = self.attn.split_kv(normed)
        mask = geo.local_mask if self.local else geo.global_mask
        attended = self.attn(normed, keys, values, mask)
        return self.residual(semantic, attended.reshape(B, nW, N, C))


class RecoveryBlock(LayerScaledBlock):
    """Gives back full-resolution image tokens: each window's image tokens
    (queries) attend to a neighbourhood of semantic tokens (keys/values).

    Args:
        window_size (int): Image window side w.
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, window_size: int, **kwargs):
        super().__init__(**kwargs)
        self.window_size = window_size

    def forward(self, image: Tensor, semantic: Tensor,
                geo: StageGeometry) -> Tensor:
        """
        Args:
            image (Tensor): (B, H, W, C) image tokens (queries, residual).
            semantic (Tensor): (B, nW, s*s, C) semantic tokens.
            geo (StageGeometry): Window counts and the recovery key mask.

        Returns:
            Tensor: (B, H, W, C) image tokens.
        """
        B, H, W, C = image.shape
        w = self.window_size
        if geo.recovery_dense:
            # Each image token is a query with its window's mask row: no
            # padded queries, and one set of keys for all of them.
            keys, values = self.dense_kv(semantic)
            mask = geo.recovery_mask.flatten(1).index_select(
                0, geo.recovery_windows)
            attended = self.attn(self.norm1(image).reshape(B, 1, H * W, C),
                                 keys, values, mask[None, None])
            return self.residual(image, attended.reshape(B, H, W, C))
        keys, values = gather_neighbourhoods(
            self.attn.kv(self.norm1(semantic.flatten(1, 2))),
            self.padded_kv(semantic), geo.recovery_index, self.attn.num_heads)
        padded = F.pad(image, (0, 0, 0, pad_to(W, w), 0, pad_to(H, w)))
        queries = partition_windows(self.norm1(padded), w)
        attended = self.attn(queries, keys, values, geo.recovery_mask)
        attended = merge_windows(attended, geo.num_windows, w)[:, :H, :W]
        return self.residual(image, attended)

    def dense_kv(self, semantic: Tensor):
        """Keys/values of all semantic tokens plus one padded key, shared by
        every window: (B, 1, heads, nW*s*s + 1, C // heads) each."""
        B, nW, N, C = semantic.shape
        tokens = self.norm1(semantic.reshape(B, 1, nW * N, C))
        padded = self.padded_token(semantic)
        return self.attn.split_kv(
            torch.cat([tokens, padded.expand(B, 1, 1, C)], dim=2))
