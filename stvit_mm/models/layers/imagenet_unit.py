"""The dumbbell unit of the released ImageNet classifier (``changsn/STViT-R``).

Its parameters have the detection unit's names and shapes (so one set of
weights serves both, which is how the release initialised its detectors),
but three of its six blocks compute something else:

* block 1 makes the semantic tokens in ONE attention step: the s*s tokens
  max-pooled from each 7x7 window are the queries; the keys are those pooled
  tokens plus a 10x10 neighbourhood of image tokens (at 14x14 the release's
  ``unfold(kernel 10, stride 4)``), and there is no residual (released
  ``SHORTCUT=False``): the output is ``layer_scale_1 * attention``;
* block 2 is a global block: the semantic tokens attend to
  ``norm1(cat[semantic, image])``;
* blocks 3 and 4 are the local and global semantic blocks of the detection
  unit;
* block 5 gives the image tokens back: each attends to ALL semantic tokens
  (no neighbourhood, no padded key).

The release hard-codes a 14x14 stage-3 map (224 px); here the key
neighbourhood of block 1 is defined for any map (:func:`key_window_starts`)
and equals the release's at 14x14, so the model also runs at e.g. 384 px.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import ModuleList
from torch import Tensor

from .dumbbell import DumbbellUnit
from .geometry import StageGeometry
from .neighbourhoods import gather_neighbourhoods
from .semantic import max_pool_windows
from .swin import pad_to
from .token_attention import LayerScaledBlock, _scaled_residual

#: Side of the image-token key neighbourhood of the released generation step.
RELEASE_KEY_WINDOW = 10


def key_window_starts(length: int, window_size: int,
                      key_window: int) -> Tuple[int, ...]:
    """First row (or column) of each window's key neighbourhood.

    Each window's neighbourhood contains the window, is centred on it as far
    as the (padded) map allows, and never leaves the map. At 14 tokens,
    window 7 and key window 10 that is (0, 4): the release's unfold with
    stride 4.

    Args:
        length (int): Map side, padded to whole windows.
        window_size (int): Window side w.
        key_window (int): Neighbourhood side (at most ``length`` is used).

    Returns:
        tuple[int]: One start per window.
    """
    last = max(length - key_window, 0)
    before = (key_window - window_size) // 2
    return tuple(min(max(window_size * i - before, 0), last)
                 for i in range(length // window_size))


class ReleaseTokenGeneration(LayerScaledBlock):
    """Block 1 of an ImageNet unit: pooled tokens (queries) attend to
    themselves and a key neighbourhood of image tokens.

    Args:
        window_size (int): Image window side w.
        key_window (int): Image-token neighbourhood side. Defaults to 10.
        shortcut (bool): Add the pooled tokens back (the release's
            ``SHORTCUT=True``); its released models use False.
            Defaults to False.
        pool_pad_value (float): Window padding during pooling (0 as
            released, -inf to keep padding out of the max).
        mask_padded_keys (bool): Keep padded image tokens out of the keys
            (they never occur at 224 px). Defaults to False.
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, window_size: int,
                 key_window: int = RELEASE_KEY_WINDOW,
                 shortcut: bool = False, pool_pad_value: float = 0.,
                 mask_padded_keys: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.window_size = window_size
        self.key_window = key_window
        self.shortcut = shortcut
        self.pool_pad_value = pool_pad_value
        self.mask_padded_keys = mask_padded_keys

    def neighbourhood_index(self, height: int, width: int, device
                            ) -> Tuple[Tensor, Optional[Tensor]]:
        """Where each window's key neighbourhood lies among the image tokens.

        Args:
            height (int): Image token rows H.
            width (int): Image token columns W.
            device: Where the index is made.

        Returns:
            tuple: The (nW, k*k) raster index of each neighbourhood position
            into the H*W image tokens (H*W for padding), and the additive
            (nW, 1, 1, k*k) mask of padded positions in exact mode
            (``mask_padded_keys``) where there is padding, else None.
        """
        w = self.window_size
        rows = _ranges(height + pad_to(height, w), w, self.key_window, device)
        cols = _ranges(width + pad_to(width, w), w, self.key_window, device)
        inside = ((rows < height)[:, None, :, None]
                  & (cols < width)[None, :, None, :])
        nW = rows.shape[0] * cols.shape[0]
        index = torch.where(
            inside, rows[:, None, :, None] * width + cols[None, :, None, :],
            height * width).reshape(nW, -1)
        if not self.mask_padded_keys or (pad_to(height, w) == 0
                                         and pad_to(width, w) == 0):
            return index, None
        mask = torch.zeros(inside.shape, device=device).masked_fill(
            ~inside, -torch.inf)
        return index, mask.reshape(nW, 1, 1, -1)

    def forward(self, image: Tensor, geo: StageGeometry) -> Tensor:
        """
        Args:
            image (Tensor): (B, H, W, C) image tokens.
            geo (StageGeometry): s, and (exact mode) the mask of semantic
                tokens pooled from padding alone.

        Returns:
            Tensor: (B, nW, s*s, C) semantic tokens in window order.
        """
        pooled = max_pool_windows(image, self.window_size,
                                  geo.sample_window_size, self.pool_pad_value)
        B, H, W, _ = image.shape
        index, mask = self.neighbourhood_index(H, W, image.device)
        if mask is not None or geo.local_mask is not None:
            nW, N, K = pooled.shape[1], pooled.shape[2], index.shape[1]
            zeros = image.new_zeros(nW, 1, 1, N + K)
            mask = torch.cat([
                zeros[..., :N] if geo.local_mask is None else
                geo.local_mask.to(zeros),
                zeros[..., N:] if mask is None else mask], dim=-1)
        queries = self.norm1(pooled)
        # The keys are the pooled tokens, then the neighbourhood. The image
        # tokens are projected once and their projections gathered, as in
        # the detection unit's gathered generation: the release's
        # neighbourhoods overlap (2x at 224 px), and a position in its zero
        # padding holds kv(norm1(0)).
        own_keys, own_values = self.attn.split_kv(queries)
        keys, values = gather_neighbourhoods(
            self.attn.kv(self.norm1(image)).flatten(1, 2),
            self.padded_kv(image), index, self.attn.num_heads)
        attended = self.attn(queries, torch.cat([own_keys, keys], dim=3),
                             torch.cat([own_values, values], dim=3), mask)
        if self.shortcut:
            x = _scaled_residual(pooled, attended, self.gamma1,
                                 self.drop_path)
        else:
            # As released: layer scale, but neither residual nor drop path.
            x = self.gamma1(attended)
        return _scaled_residual(x, self.ffn.layers(self.norm2(x)),
                                self.ffn.gamma2, self.ffn.dropout_layer)


def _ranges(length: int, window_size: int, key_window: int,
            device: torch.device) -> Tensor:
    """(windows, k) indices of each window's neighbourhood along one side."""
    k = min(key_window, length)
    starts = torch.tensor(key_window_starts(length, window_size, k),
                          device=device)
    return starts[:, None] + torch.arange(k, device=device)


class GlobalCrossBlock(LayerScaledBlock):
    """Queries attend to all of a set of key tokens (blocks 2 and 5 of an
    ImageNet unit); the residual is the queries.

    Args:
        **kwargs: :class:`LayerScaledBlock` arguments.
    """

    def forward(self, queries: Tensor, keys: Tensor,
                key_mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            queries (Tensor): (B, Nq, C) tokens.
            keys (Tensor): (B, Nk, C) tokens (normed here, with norm1).
            key_mask (Tensor, optional): Additive (1, 1, 1, Nk) mask.

        Returns:
            Tensor: (B, Nq, C).
        """
        k, v = self.attn.split_kv(self.norm1(keys)[:, None])
        attended = self.attn(self.norm1(queries)[:, None], k, v, key_mask)
        return self.residual(queries, attended[:, 0])


class ReleaseImageNetUnit(DumbbellUnit):
    """The released ImageNet classifier's six blocks, under the detection
    unit's module names (``generate.0``: token generation, ``generate.1``:
    semantic-to-all global block, ``recovery_block``: image tokens attending
    to all semantic tokens), so that released keys map one to one.

    Args:
        See :class:`~.dumbbell.DumbbellUnit`; ``pad_mask='exact'`` also keeps
        padded image tokens and padding-only semantic tokens out of the keys.
    """

    def build_generation(self, window_size, drop_path_rates, pad_mask,
                         common) -> ModuleList:
        exact = pad_mask == 'exact'
        return ModuleList([
            ReleaseTokenGeneration(
                window_size,
                pool_pad_value=-torch.inf if exact else 0.,
                mask_padded_keys=exact, drop_path_rate=drop_path_rates[1],
                **common),
            GlobalCrossBlock(drop_path_rate=drop_path_rates[2], **common),
        ])

    def build_recovery(self, window_size, drop_path_rate, common):
        return GlobalCrossBlock(drop_path_rate=drop_path_rate, **common)

    def forward(self, x: Tensor, geo: StageGeometry) -> Tensor:
        """(B, H, W, C) image tokens -> (B, H, W, C) image tokens."""
        run = self._run
        x = run(self.swin_block, x)
        B, H, W, C = x.shape
        semantic = run(self.generate[0], x, geo)
        nW, N = semantic.shape[1:3]
        image = x.reshape(B, H * W, C)
        mask = geo.global_mask
        flat = run(self.generate[1], semantic.reshape(B, nW * N, C),
                   torch.cat([semantic.reshape(B, nW * N, C), image], dim=1),
                   None if mask is None else F.pad(mask, (0, H * W)))
        semantic = run(self.local_block, flat.reshape(B, nW, N, C), geo)
        semantic = run(self.global_block, semantic, geo)
        image = run(self.recovery_block, image,
                    semantic.reshape(B, nW * N, C), mask)
        return image.reshape(B, H, W, C)
