"""Swin parts of STViT-R-Swin: the convolutional stem, (shifted) window
attention blocks, patch merging and a plain Swin stage.

Feature maps stay channel-last, (B, H, W, C), between blocks. The math is the
released (and mmdet's) Swin: pre-norm blocks, padding to whole windows after
norm1, relative position bias, a -100 mask across shifted-window seams. The
attention itself runs through ``scaled_dot_product_attention``.
"""
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from .capture import attention, cast, exporting
from .recompute import maybe_recompute


def pad_to(size, multiple: int):
    """Padding that brings ``size`` up to a multiple of ``multiple``.

    The same int as ``-size % multiple``, written as
    ``ceil(size / multiple) * multiple - size`` so that a symbolic size
    (graph capture) stays in a form torch's shape reasoning simplifies; the
    modulo form makes every later size expression grow, and export crawl.
    """
    return (size + multiple - 1) // multiple * multiple - size


class ConvStem(BaseModule):
    """Two 3x3 stride-2 conv + BN + Hardswish layers (3 -> C/2 -> C), the
    released STViT-R-Swin patch embedding. The input is first padded at the
    bottom and right to a multiple of 4.

    Args:
        in_channels (int): Image channels.
        embed_dims (int): Output channels C.
        norm_cfg (dict): Norm after each conv. Defaults to BN.
        act_cfg (dict): Activation after each norm. Defaults to HSwish.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='HSwish'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        conv = dict(kernel_size=3, stride=2, padding=1, bias=False,
                    norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.convs = nn.Sequential(
            ConvModule(in_channels, embed_dims // 2, **conv),
            ConvModule(embed_dims // 2, embed_dims, **conv))

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        x = F.pad(x, (0, pad_to(W, 4), 0, pad_to(H, 4)))
        # channels_last convs run about twice as fast on CPU (same numbers),
        # and their output is then already a contiguous (B, H, W, C) map.
        x = x.contiguous(memory_format=torch.channels_last)
        for layer in self.convs:
            x = _conv_norm_act(layer, x)
        return x.permute(0, 2, 3, 1)


def _conv_norm_act(layer: ConvModule, x: Tensor) -> Tensor:
    """``layer(x)``; with a norm using running statistics (eval mode), the
    norm is folded into the conv's weight and bias first: the same affine
    map, without a pass over the (large, early) feature map."""
    norm = layer.norm if layer.with_norm else None
    foldable = (not layer.training and norm is not None
                and layer.order == ('conv', 'norm', 'act')
                and getattr(norm, 'running_var', None) is not None)
    if not foldable:
        return layer(x)
    conv = layer.conv
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    x = F.conv2d(x, conv.weight * scale.reshape(-1, 1, 1, 1), bias,
                 conv.stride, conv.padding, conv.dilation, conv.groups)
    return layer.activate(x) if layer.with_activation else x


@lru_cache(maxsize=8)
def relative_position_index(window_size: int) -> Tensor:
    """(N, N) index into a (2w-1)**2 relative-position table, N = w*w.

    Built from a Python list, so that a captured graph holds it as one
    constant instead of the ops that compute it."""
    w = window_size
    coords = [(i, j) for i in range(w) for j in range(w)]
    index = [(i - k + w - 1) * (2 * w - 1) + (j - m + w - 1)
             for i, j in coords for k, m in coords]
    return torch.tensor(index).reshape(w * w, w * w)


@lru_cache(maxsize=32)
def shifted_window_mask(padded_size: Tuple[int, int], window_size: int,
                        shift: int, device: torch.device) -> Tensor:
    """(nW, 1, N, N) additive mask, -100 between tokens that a cyclic shift
    brought together from different image regions (Swin's convention)."""
    region = torch.zeros(padded_size)
    cuts = (slice(0, -window_size), slice(-window_size, -shift),
            slice(-shift, None))
    for i, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        region[rows, cols] = i
    windows = partition_windows(region[None, :, :, None], window_size)
    windows = windows.reshape(-1, window_size * window_size)
    differs = windows[:, None, :] != windows[:, :, None]
    mask = torch.zeros(differs.shape).masked_fill(differs, -100.0)
    return mask[:, None].to(device)


def traced_shift_mask(padded_size, window_size: int, shift: int,
                      device: torch.device) -> Tensor:
    """:func:`shifted_window_mask` from tensor ops of a (possibly symbolic)
    size, for graph capture: the same values, nothing cached."""
    def regions(length):
        # Region 0, 1, 2 of Swin's slices (0, -w), (-w, -shift), (-shift, ).
        pos = torch.arange(length, device=device)
        return ((pos >= length - window_size).long() +
                (pos >= length - shift).long())

    region = regions(padded_size[0])[:, None] * 3 + regions(padded_size[1])
    windows = partition_windows(region[None, :, :, None], window_size)
    windows = windows.reshape(-1, window_size * window_size)
    differs = windows[:, None, :] != windows[:, :, None]
    return torch.where(differs, -100.0, 0.)[:, None]


def partition_windows(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, w*w, C), H and W multiples of the window."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // window_size, window_size, W // window_size,
                  window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, -1,
                                               window_size * window_size, C)


def merge_windows(windows: Tensor, num_windows: Tuple[int, int],
                  window_size: int) -> Tensor:
    """Inverse of :func:`partition_windows`."""
    B, _, _, C = windows.shape
    x = windows.reshape(B, *num_windows, window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, num_windows[0] * window_size,
                                               num_windows[1] * window_size, C)


class WindowAttention(BaseModule):
    """Multi-head self-attention inside windows with a relative position bias.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
        window_size (int): Window side.
        qkv_bias (bool): Bias in the qkv projection.
        attn_drop_rate (float): Dropout on attention weights.
        proj_drop_rate (float): Dropout after the output projection.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int,
                 qkv_bias: bool = True, attn_drop_rate: float = 0.,
                 proj_drop_rate: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.attn_drop_rate = attn_drop_rate
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1)**2, num_heads))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = (nn.Dropout(proj_drop_rate)
                          if proj_drop_rate > 0 else nn.Identity())

    def init_weights(self):
        trunc_normal_(self.relative_position_bias_table, std=.02)

    def position_bias(self) -> Tensor:
        # Never fill the cache while capturing: it would keep a fake tensor.
        build = (relative_position_index.__wrapped__ if exporting() else
                 relative_position_index)
        index = build(self.window_size).to(
            self.relative_position_bias_table.device)
        bias = self.relative_position_bias_table[index.reshape(-1)]
        return bias.reshape(*index.shape, -1).permute(2, 0, 1)

    def forward(self, windows: Tensor, mask: Optional[Tensor] = None):
        """
        Args:
            windows (Tensor): (B, nW, N, C) tokens.
            mask (Tensor, optional): (nW, 1, N, N) additive shift mask.

        Returns:
            Tensor: (B, nW, N, C).
        """
        B, nW, N, C = windows.shape
        # 4-D (B*nW, heads, N, d) operands: the fused CPU kernel takes no more.
        qkv = self.qkv(windows).reshape(B * nW, N, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.position_bias()[None]
        if mask is not None:
            bias = (bias + mask).repeat(B, 1, 1, 1)
        out = attention(
            q, k, v, attn_mask=cast(bias, q.dtype),
            dropout_p=self.attn_drop_rate if self.training else 0.)
        out = out.transpose(1, 2).reshape(B, nW, N, C)
        return self.proj_drop(self.proj(out))


class SwinBlock(BaseModule):
    """Pre-norm (shifted) window attention block followed by an MLP.

    Args:
        embed_dims (int): Channels.
        num_heads (int): Heads.
        window_size (int): Window side.
        shift (bool): Shift windows by half a window (SW-MSA).
        mlp_ratio (float): MLP hidden channels / channels.
        qkv_bias (bool): Bias in the qkv projection.
        drop_rate (float): Dropout after projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of both branches.
        act_cfg (dict): MLP activation.
        norm_cfg (dict): Norm layers.
        shift_single_window (bool): Shift a map whose shorter side fits in
            one window, as mmdet's Swin (and the released detectors) do;
            False does not, as the released classifier (its last stage at
            224 px is one 7x7 window). Defaults to True.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift: bool = False, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'),
                 shift_single_window: bool = True):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2 if shift else 0
        self.shift_single_window = shift_single_window
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = WindowAttention(embed_dims, num_heads, window_size,
                                    qkv_bias, attn_drop_rate, drop_rate)
        self.drop_path = build_dropout(
            dict(type='DropPath', drop_prob=drop_path_rate))
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio), num_fcs=2,
                       ffn_drop=drop_rate, act_cfg=act_cfg,
                       dropout_layer=dict(type='DropPath',
                                          drop_prob=drop_path_rate))

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        B, H, W, C = x.shape
        w, shift = self.window_size, self.shift_size
        if not self.shift_single_window and min(H, W) <= w:
            shift = 0
        num_windows = (H + w - 1) // w, (W + w - 1) // w
        Hp, Wp = num_windows[0] * w, num_windows[1] * w
        y = F.pad(self.norm1(x), (0, 0, 0, Wp - W, 0, Hp - H))
        mask = None
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
            make = traced_shift_mask if exporting() else shifted_window_mask
            mask = make((Hp, Wp), w, shift, x.device)
        y = self.attn(partition_windows(y, w), mask)
        y = merge_windows(y, num_windows, w)
        if shift:
            y = torch.roll(y, (shift, shift), dims=(1, 2))
        x = x + self.drop_path(y[:, :H, :W])
        return self.ffn(self.norm2(x), identity=x)


class PatchMerging(BaseModule):
    """2x2 neighbourhood concatenation (released channel order: (0,0), (1,0),
    (0,1), (1,1)), norm and a linear reduction to twice the channels. Odd
    sides are zero-padded.

    Args:
        in_channels (int): Channels C of the input.
        norm_cfg (dict): Norm over the 4C concatenation.
    """

    def __init__(self, in_channels: int, norm_cfg: dict = dict(type='LN')):
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, 4 * in_channels)[1]
        self.reduction = nn.Linear(4 * in_channels, 2 * in_channels,
                                   bias=False)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, pad_to(W, 2), 0, pad_to(H, 2)))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                       x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinStage(BaseModule):
    """Swin blocks alternating W-MSA and SW-MSA.

    Args:
        embed_dims (int): Channels.
        depth (int): Number of blocks.
        num_heads (int): Heads.
        drop_path_rates (Sequence[float]): One rate per block.
        with_cp (bool): Checkpoint each block's activations.
        block_cfg: Remaining :class:`SwinBlock` arguments.
    """

    def __init__(self, embed_dims: int, depth: int, num_heads: int,
                 drop_path_rates: Sequence[float], with_cp: bool = False,
                 **block_cfg):
        super().__init__()
        self.with_cp = with_cp
        self.blocks = ModuleList([
            SwinBlock(embed_dims, num_heads, shift=i % 2 == 1,
                      drop_path_rate=drop_path_rates[i], **block_cfg)
            for i in range(depth)
        ])

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = maybe_recompute(block, self.with_cp and self.training, x)
        return x
