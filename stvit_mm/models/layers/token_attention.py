"""Attention and the pre-norm, layer-scaled block that every semantic-token
block of the sparsified stage is built from (released names ``attn.q``,
``attn.kv``, ``attn.proj``, ``norm1``, ``norm2``, ``mlp``, ``layer_scale_*``).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath, build_dropout
from mmcv.cnn.bricks.scale import LayerScale
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor, nn

from .capture import attention, cast, exporting


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
        self.proj_drop = (nn.Dropout(proj_drop_rate)
                          if proj_drop_rate > 0 else nn.Identity())

    def split_kv(self, tokens: Tensor):
        """Project (B, G, N, C) tokens to keys and values of shape
        (B, G, heads, N, C // heads) each."""
        B, G, N, _ = tokens.shape
        kv = self.kv(tokens).reshape(B, G, N, 2, self.num_heads, -1)
        return kv.permute(3, 0, 1, 4, 2, 5).unbind(0)

    @staticmethod
    def batch_mask(mask: Optional[Tensor], batch: int,
                   dtype: torch.dtype) -> Optional[Tensor]:
        """A per-group (G, 1, Nq or 1, Nk) mask for (B*G) attention rows:
        repeated per sample, or broadcast when one group serves all."""
        if mask is None:
            return None
        mask = mask.to(dtype)
        return mask if mask.shape[0] == 1 else mask.repeat(batch, 1, 1, 1)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor,
                mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            queries (Tensor): (B, G, Nq, C) normed query tokens, G groups
                (windows) attended independently.
            keys (Tensor): (B, G, heads, Nk, C // heads).
            values (Tensor): Same shape as keys.
            mask (Tensor, optional): Additive (G, 1, 1, Nk) key mask, or
                (1, 1, Nq, Nk) per query when G is 1.

        Returns:
            Tensor: (B, G, Nq, C).
        """
        B, G, N, C = queries.shape
        q = self.project_q(queries)
        dropout = self.attn_drop_rate if self.training else 0.
        if exporting():
            # Plain 5-D math: the (G, 1, 1, Nk) mask broadcasts over the
            # batch, and no branch on the symbolic sizes.
            out = attention(q, keys, values,
                            None if mask is None else cast(mask, q.dtype),
                            dropout)
        else:
            # 4-D (B*G, heads, N, d) operands: the fused CPU kernel takes no
            # more.
            out = F.scaled_dot_product_attention(
                q.flatten(0, 1), keys.flatten(0, 1), values.flatten(0, 1),
                attn_mask=self.batch_mask(mask, B, q.dtype),
                dropout_p=dropout).reshape(B, G, self.num_heads, N, -1)
        return self.project_out(out.transpose(2, 3).reshape(B, G, N, C))

    def project_q(self, queries: Tensor) -> Tensor:
        """(B, G, N, C) -> (B, G, heads, N, C // heads) queries."""
        B, G, N, _ = queries.shape
        return self.q(queries).reshape(B, G, N, self.num_heads,
                                       -1).transpose(2, 3)

    def project_out(self, out: Tensor) -> Tensor:
        """(B, G, N, C) attention output, heads concatenated -> output
        projection."""
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

    def padded_token(self, like: Tensor) -> Tensor:
        """(C, ) what a padded key position of the released code holds
        once normed: norm1(0)."""
        # Normed as (1, C): TorchScript-based FLOP counters (mmengine's,
        # fvcore) refuse a 1-D layer norm input.
        return self.norm1(like.new_zeros(1, like.shape[-1]))[0]

    def padded_kv(self, like: Tensor) -> Tensor:
        """Projected key/value of a zero (padded) token: kv(norm1(0))."""
        return self.attn.kv(self.padded_token(like))

    def residual(self, shortcut: Tensor, attended: Tensor) -> Tensor:
        """``x = shortcut + drop_path(gamma1(attended))``, then
        ``x + ffn's drop_path(gamma2(mlp(norm2(x))))``: what mmcv's
        LayerScale, DropPath and FFN compute, each residual as one
        multiply-add."""
        x = _scaled_residual(shortcut, attended, self.gamma1, self.drop_path)
        return _scaled_residual(x, self.ffn.layers(self.norm2(x)),
                                self.ffn.gamma2, self.ffn.dropout_layer)


def _scaled_residual(shortcut: Tensor, branch: Tensor, scale: nn.Module,
                     drop: DropPath) -> Tensor:
    """``shortcut + drop(scale(branch))`` with the layer scale and the
    per-sample stochastic-depth factor (0 or 1 / keep probability, drawn as
    mmcv's ``drop_path`` draws it) folded into one small factor: one pass
    over the tokens instead of three or four, each of which is a parallel
    operation that waits for the second core when the cores are shared."""
    # FFN's gamma2 is an Identity when layer scale is off (init value 0).
    factor = scale.weight if isinstance(scale, LayerScale) else None
    if drop.training and drop.drop_prob > 0:
        keep = 1 - drop.drop_prob
        shape = (branch.shape[0], ) + (1, ) * (branch.dim() - 1)
        sample = (keep + torch.rand(shape, dtype=branch.dtype,
                                    device=branch.device)).floor_() / keep
        factor = sample if factor is None else sample * factor
    if factor is None:
        return shortcut + branch
    return torch.addcmul(shortcut, branch, factor)
