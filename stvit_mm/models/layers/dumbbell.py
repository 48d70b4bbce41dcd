"""STViT-R's sparsified stage: dumbbell units of six blocks.

A unit runs one Swin block on all image tokens, generates s*s semantic tokens
per window in two steps, runs a local and a global block on the semantic
tokens only, and recovers the full-resolution image tokens; the blocks are in
:mod:`.semantic`.
"""
import torch
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from .capture import exporting
from .export_geometry import traced_stage_geometry
from .geometry import StageGeometry, stage_geometry
from .neighbourhood_attention import check_neighbourhood_impl
from .recompute import maybe_recompute
from .semantic import RecoveryBlock, SemanticBlock, TokenGenerationBlock
from .swin import SwinBlock

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
        drop_path_rates (Sequence[float]): One rate per block (6).
        pad_mask (str): ``'official'`` or ``'exact'``.
        with_cp (bool): Recompute each block's activations in the backward
            pass instead of storing them.
        swin_cfg (dict): Extra :class:`SwinBlock` arguments.
        block_cfg (dict): Extra :class:`LayerScaledBlock` arguments.
    """

    def __init__(self, embed_dims, num_heads, window_size, drop_path_rates,
                 pad_mask='official', with_cp=False,
                 swin_cfg=dict(), block_cfg=dict()):
        super().__init__()
        self.with_cp = with_cp
        common = dict(embed_dims=embed_dims, num_heads=num_heads, **block_cfg)
        self.swin_block = SwinBlock(
            embed_dims, num_heads, window_size, shift=False,
            drop_path_rate=drop_path_rates[0], **swin_cfg)
        self.generate = self.build_generation(window_size, drop_path_rates,
                                              pad_mask, common)
        self.local_block = SemanticBlock(
            local=True, drop_path_rate=drop_path_rates[3], **common)
        self.global_block = SemanticBlock(
            local=False, drop_path_rate=drop_path_rates[4], **common)
        self.recovery_block = self.build_recovery(
            window_size, drop_path_rates[5], common)

    # A unit variant (:mod:`.imagenet_unit`) overrides these two builders and
    # ``forward``; the Swin, local and global blocks are shared.
    def build_generation(self, window_size, drop_path_rates, pad_mask,
                         common) -> ModuleList:
        """Blocks 1 and 2: the two semantic-token generation steps."""
        return ModuleList([
            TokenGenerationBlock(
                window_size,
                pool_pad_value=0. if pad_mask == 'official' else -torch.inf,
                drop_path_rate=drop_path_rates[1 + i], **common)
            for i in range(2)
        ])

    def build_recovery(self, window_size, drop_path_rate, common):
        """Block 5: the image tokens recovered from the semantic tokens."""
        return RecoveryBlock(window_size, drop_path_rate=drop_path_rate,
                             **common)

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
        return maybe_recompute(block, self.with_cp and self.training, *args)


class SparsifiedStage(BaseModule):
    """Stage 3 of STViT-R-Swin: ``depth // 6`` dumbbell units.

    Args:
        embed_dims (int): Channels.
        depth (int): Blocks, a multiple of 6.
        num_heads (int): Heads.
        drop_path_rates (Sequence[float]): One rate per block.
        window_size (int): Image window side w.
        sample_window_size (int): Semantic tokens per window side s. An
            inference-time dial: the same weights serve any s, so it may be
            changed on a built model.
        semantic_key_windows (tuple[int, int]): Generation-step key windows.
        recovery_key_window (int): Recovery key window.
        pad_mask (str): ``'official'`` or ``'exact'``.
        with_cp (bool): Recompute each block's activations in the backward
            pass instead of storing them.
        swin_cfg (dict): Extra :class:`SwinBlock` arguments.
        block_cfg (dict): Extra :class:`LayerScaledBlock` arguments.
        unit_type (type): The unit: :class:`DumbbellUnit` (detection) or
            :class:`~.imagenet_unit.ReleaseImageNetUnit`.
        neighbourhood_impl (str): Backend of the generation steps'
            neighbourhood attention (:mod:`.neighbourhood_attention`); may
            be changed on a built model.
    """

    def __init__(self, embed_dims, depth, num_heads, drop_path_rates,
                 window_size, sample_window_size, semantic_key_windows,
                 recovery_key_window, pad_mask='official', with_cp=False,
                 swin_cfg=dict(), block_cfg=dict(), unit_type=DumbbellUnit,
                 neighbourhood_impl='auto'):
        super().__init__()
        self.window_size = window_size
        self.sample_window_size = sample_window_size
        self.semantic_key_windows = tuple(semantic_key_windows)
        self.recovery_key_window = recovery_key_window
        self.pad_mask = pad_mask
        self.units = ModuleList([
            unit_type(embed_dims, num_heads, window_size,
                         drop_path_rates[UNIT_DEPTH * u:UNIT_DEPTH * (u + 1)],
                         pad_mask, with_cp, swin_cfg, block_cfg)
            for u in range(depth // UNIT_DEPTH)
        ])
        self.neighbourhood_impl = neighbourhood_impl

    @property
    def neighbourhood_impl(self) -> str:
        return self._neighbourhood_impl

    @neighbourhood_impl.setter
    def neighbourhood_impl(self, impl: str):
        self._neighbourhood_impl = check_neighbourhood_impl(impl)
        for block in self.modules():
            if isinstance(block, TokenGenerationBlock):
                block.neighbourhood_impl = impl

    def forward(self, x: Tensor) -> Tensor:
        # A captured graph serves every size: no per-size cache there.
        build = traced_stage_geometry if exporting() else stage_geometry
        geo = build(tuple(x.shape[1:3]), self.window_size,
                    self.sample_window_size, self.semantic_key_windows,
                    self.recovery_key_window, self.pad_mask, x.device)
        for unit in self.units:
            x = unit(x, geo)
        return x
