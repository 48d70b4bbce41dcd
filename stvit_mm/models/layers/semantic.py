"""STViT-R's sparsified stage: dumbbell units of semantic-token blocks.

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
token and then gathered (see :func:`gather_neighbourhoods`), which gives the
released code's numbers at a fraction of its cost.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.scale import LayerScale
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from .block_attention import (blockwise_attention, blockwise_available,
                              window_kv_map)
from .checkpointing import maybe_checkpoint
from .geometry import StageGeometry, gather_neighbourhoods, stage_geometry
from .swin import SwinBlock, merge_windows, partition_windows


class TokenAttention(BaseModule):
    """Multi-head attention with separate query and key/value projections
    (released names ``q``, ``kv``, ``proj``) and no position bias.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
        qkv_bias (bool): Bias in the q and kv projections.
        attn_drop_rate (float): Dropout on attention weights.
        proj_drop_rate (float): Dropout after the output projection.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.attn_drop_rate = attn_drop_rate
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, embed_dims * 2, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def split_kv(self, tokens: Tensor):
        """Project (B, G, N, C) tokens to keys and values of shape
        (B, G, heads, N, C // heads) each."""
        B, G, N, _ = tokens.shape
        kv = self.kv(tokens).reshape(B, G, N, 2, self.num_heads, -1)
        return kv.permute(3, 0, 1, 4, 2, 5).unbind(0)

    @staticmethod
    def batch_mask(mask: Optional[Tensor], batch: int,
                   dtype: torch.dtype) -> Optional[Tensor]:
        """Repeat a per-group (G, 1, 1, N) mask for (B*G) attention rows."""
        if mask is None:
            return None
        return mask.to(dtype).repeat(batch, 1, 1, 1)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            queries (Tensor): (B, G, Nq, C) normed query tokens, G groups
                (windows) attended independently.
            keys (Tensor): (B, G, heads, Nk, C // heads), or
                (B, 1, heads, Nk, C // heads) when all groups share them.
            values (Tensor): Same shape as keys.
            mask (Tensor, optional): Additive (G, 1, 1, Nk) key mask.

        Returns:
            Tensor: (B, G, Nq, C).
        """
        B, G, N, C = queries.shape
        q = self.project_q(queries)
        dropout = self.attn_drop_rate if self.training else 0.
        if keys.shape[1] == 1 and G > 1:
            # Shared keys: broadcast (stride 0) per sample, never copied.
            out = torch.stack([
                F.scaled_dot_product_attention(
                    q[b], keys[b].expand(G, -1, -1, -1),
                    values[b].expand(G, -1, -1, -1),
                    attn_mask=None if mask is None else mask.to(q.dtype),
                    dropout_p=dropout) for b in range(B)
            ])
        else:
            # 4-D (B*G, heads, N, d) operands: the fused CPU kernel takes no
            # more.
            out = F.scaled_dot_product_attention(
                q.flatten(0, 1), keys.flatten(0, 1), values.flatten(0, 1),
                attn_mask=self.batch_mask(mask, B, q.dtype),
                dropout_p=dropout).reshape(B, G, self.num_heads, N, -1)
        return self.project_out(out)

    def project_q(self, queries: Tensor) -> Tensor:
        """(B, G, N, C) -> (B, G, heads, N, C // heads) queries."""
        B, G, N, _ = queries.shape
        return self.q(queries).reshape(B, G, N, self.num_heads,
                                       -1).transpose(2, 3)

    def project_out(self, out: Tensor) -> Tensor:
        """(B, G, heads, N, d) attention output -> (B, G, N, C)."""
        B, G, _, N, _ = out.shape
        out = out.transpose(2, 3).reshape(B, G, N, -1)
        return self.proj_drop(self.proj(out))


class LayerScaledBlock(BaseModule):
    """Shared parts of the semantic-token blocks: norm1, attention,
    layer-scaled residual, norm2 and a layer-scaled MLP.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
        mlp_ratio (float): MLP hidden channels / channels.
        qkv_bias (bool): Bias in the q and kv projections.
        drop_rate (float): Dropout after projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of both branches.
        layer_scale_init_value (float): Initial layer scale.
        act_cfg (dict): MLP activation.
        norm_cfg (dict): Norm layers.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-5,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = TokenAttention(embed_dims, num_heads, qkv_bias,
                                   attn_drop_rate, drop_rate)
        self.gamma1 = LayerScale(embed_dims, scale=layer_scale_init_value)
        self.drop_path = build_dropout(
            dict(type='DropPath', drop_prob=drop_path_rate))
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio), num_fcs=2,
                       ffn_drop=drop_rate, act_cfg=act_cfg,
                       dropout_layer=dict(type='DropPath',
                                          drop_prob=drop_path_rate),
                       layer_scale_init_value=layer_scale_init_value)

    def padded_kv(self, like: Tensor) -> Tensor:
        """Projected key/value of a zero (padded) token: kv(norm1(0))."""
        return self.attn.kv(self.norm1(like.new_zeros(1, like.shape[-1])))[0]

    def residual(self, shortcut: Tensor, attended: Tensor) -> Tensor:
        x = shortcut + self.drop_path(self.gamma1(attended))
        return self.ffn(self.norm2(x), identity=x)


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
    x = F.pad(x, (0, 0, 0, -W % window_size, 0, -H % window_size),
              value=pad_value)
    windows = partition_windows(x, window_size)
    nW = windows.shape[1]
    windows = windows.reshape(B * nW, window_size, window_size, C)
    pooled = F.adaptive_max_pool2d(windows.permute(0, 3, 1, 2), sample_size)
    pooled = pooled.permute(0, 2, 3, 1).reshape(B, nW,
                                                sample_size * sample_size, C)
    # Pooling regions made only of -inf padding hold no information.
    return torch.nan_to_num(pooled, neginf=0.) if pad_value < 0 else pooled


class TokenGenerationBlock(LayerScaledBlock):
    """One STGM step: semantic tokens (queries) attend to a neighbourhood of
    image tokens (keys/values) around their window.

    The first step pools its queries from the image tokens; the second takes
    the first step's output. The residual is the query tokens themselves.

    Args:
        window_size (int): Image window side w.
        sample_size (int): Semantic tokens per window side s.
        pool_pad_value (float): Value of the window padding during pooling.
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, window_size: int, sample_size: int,
                 pool_pad_value: float = 0., **kwargs):
        super().__init__(**kwargs)
        self.window_size = window_size
        self.sample_size = sample_size
        self.pool_pad_value = pool_pad_value

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
                                        self.sample_size, self.pool_pad_value)
        kv = self.attn.kv(self.norm1(image))
        fill = self.padded_kv(image)
        queries = self.norm1(semantic)
        if blockwise_available(image):
            plan = geo.semantic_plans[step]
            kv_map = window_kv_map(kv, fill, geo.num_windows,
                                   self.window_size, plan.border,
                                   self.attn.num_heads)
            attended = self.attn.project_out(blockwise_attention(
                self.attn.project_q(queries), kv_map, plan, geo.num_windows))
        else:
            keys, values = gather_neighbourhoods(
                kv.flatten(1, 2), fill, geo.semantic_index[step],
                self.attn.num_heads)
            attended = self.attn(queries, keys, values,
                                 geo.semantic_masks[step])
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
            keys, values = self.dense_kv(semantic)
        else:
            keys, values = gather_neighbourhoods(
                self.attn.kv(self.norm1(semantic.flatten(1, 2))),
                self.padded_kv(semantic), geo.recovery_index,
                self.attn.num_heads)
        padded = F.pad(image, (0, 0, 0, -W % w, 0, -H % w))
        queries = partition_windows(self.norm1(padded), w)
        attended = self.attn(queries, keys, values, geo.recovery_mask)
        attended = merge_windows(attended, geo.num_windows, w)[:, :H, :W]
        return self.residual(image, attended)

    def dense_kv(self, semantic: Tensor):
        """Keys/values of all semantic tokens plus one padded key, shared by
        every window: (B, 1, heads, nW*s*s + 1, C // heads) each."""
        B, nW, N, C = semantic.shape
        tokens = self.norm1(semantic.reshape(B, 1, nW * N, C))
        padded = self.norm1(semantic.new_zeros(1, 1, 1, C))
        return self.attn.split_kv(
            torch.cat([tokens, padded.expand(B, 1, 1, C)], dim=2))


#: A unit's blocks in the released order (its block j is number 6 * unit + j).
UNIT_BLOCK_NAMES = ('swin_block', 'generate.0', 'generate.1', 'local_block',
                    'global_block', 'recovery_block')
UNIT_DEPTH = len(UNIT_BLOCK_NAMES)


class DumbbellUnit(BaseModule):
    """Six blocks: Swin W-MSA on image tokens, two semantic-token generation
    steps, a local and a global semantic block, and recovery.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
        window_size (int): Image window side w.
        sample_size (int): Semantic tokens per window side s.
        drop_path_rates (Sequence[float]): One rate per block (6).
        pad_mask (str): ``'official'`` or ``'exact'``.
        with_cp (bool): Checkpoint each block's activations.
        swin_cfg (dict): Extra :class:`SwinBlock` arguments.
        block_cfg (dict): Extra :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, embed_dims, num_heads, window_size, sample_size,
                 drop_path_rates, pad_mask='official', with_cp=False,
                 swin_cfg=dict(), block_cfg=dict()):
        super().__init__()
        self.with_cp = with_cp
        common = dict(embed_dims=embed_dims, num_heads=num_heads, **block_cfg)
        self.swin_block = SwinBlock(
            embed_dims, num_heads, window_size, shift=False,
            drop_path_rate=drop_path_rates[0], **swin_cfg)
        self.generate = ModuleList([
            TokenGenerationBlock(
                window_size, sample_size,
                pool_pad_value=0. if pad_mask == 'official' else -torch.inf,
                drop_path_rate=drop_path_rates[1 + i], **common)
            for i in range(2)
        ])
        self.local_block = SemanticBlock(
            local=True, drop_path_rate=drop_path_rates[3], **common)
        self.global_block = SemanticBlock(
            local=False, drop_path_rate=drop_path_rates[4], **common)
        self.recovery_block = RecoveryBlock(
            window_size, drop_path_rate=drop_path_rates[5], **common)

    def forward(self, x: Tensor, geo: StageGeometry) -> Tensor:
        """(B, H, W, C) image tokens -> (B, H, W, C) image tokens."""
        run = self._run
        x = run(self.swin_block, x)
        semantic = None
        for step, block in enumerate(self.generate):
            semantic = run(block, x, semantic, geo, step)
        semantic = run(self.local_block, semantic, geo)
        semantic = run(self.global_block, semantic, geo)
        return run(self.recovery_block, x, semantic, geo)

    def _run(self, block, *args):
        return maybe_checkpoint(block, self.with_cp and self.training, *args)


class SparsifiedStage(BaseModule):
    """Stage 3 of STViT-R-Swin: ``depth // 6`` dumbbell units.

    Args:
        embed_dims (int): Channels.
        depth (int): Blocks, a multiple of 6.
        num_heads (int): Heads.
        drop_path_rates (Sequence[float]): One rate per block.
        window_size (int): Image window side w.
        sample_size (int): Semantic tokens per window side s.
        semantic_key_windows (tuple[int, int]): Generation-step key windows.
        recovery_key_window (int): Recovery key window.
        pad_mask (str): ``'official'`` or ``'exact'``.
        with_cp (bool): Checkpoint each block's activations.
        swin_cfg (dict): Extra :class:`SwinBlock` arguments.
        block_cfg (dict): Extra :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, embed_dims, depth, num_heads, drop_path_rates,
                 window_size, sample_size, semantic_key_windows,
                 recovery_key_window, pad_mask='official', with_cp=False,
                 swin_cfg=dict(), block_cfg=dict()):
        super().__init__()
        self.window_size = window_size
        self.sample_size = sample_size
        self.semantic_key_windows = tuple(semantic_key_windows)
        self.recovery_key_window = recovery_key_window
        self.pad_mask = pad_mask
        self.units = ModuleList([
            DumbbellUnit(embed_dims, num_heads, window_size, sample_size,
                         drop_path_rates[UNIT_DEPTH * u:UNIT_DEPTH * (u + 1)],
                         pad_mask, with_cp, swin_cfg, block_cfg)
            for u in range(depth // UNIT_DEPTH)
        ])

    def set_sample_size(self, sample_size: int):
        """Change s (semantic tokens per window side) at inference; the same
        weights serve any s."""
        self.sample_size = sample_size
        for unit in self.units:
            for block in unit.generate:
                block.sample_size = sample_size

    def forward(self, x: Tensor) -> Tensor:
        geo = stage_geometry(tuple(x.shape[1:3]), self.window_size,
                             self.sample_size, self.semantic_key_windows,
                             self.recovery_key_window, self.pad_mask, x.device)
        for unit in self.units:
            x = unit(x, geo)
        return x
