"""STViT-R-Swin backbone (Chang et al., "Making Vision Transformers Efficient
from A Token Sparsification View", CVPR 2023), detection/segmentation variant.
"""
from typing import Optional, Sequence

from mmcv.cnn import build_norm_layer
from mmengine.logging import MMLogger
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_init
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from ...registry import register_model
from ...utils.checkpoint import CheckpointMismatchError
from ...utils.state_dict_diff import diff_state_dicts, short_list
from ..layers.dumbbell import UNIT_DEPTH, DumbbellUnit, SparsifiedStage
from ..layers.geometry import PAD_MASK_MODES
from ..layers.imagenet_unit import ReleaseImageNetUnit
from ..layers.neighbourhood_attention import NEIGHBOURHOOD_IMPLS
from ..layers.swin import ConvStem, PatchMerging, SwinStage
from .release_weights import NUM_STAGES, SPARSIFIED_STAGE, read_release

#: ``variant``: which released model the blocks compute (same parameters).
VARIANTS = ('detection', 'imagenet')


@register_model
class STViTRSwin(BaseModule):
    """STViT-R-Swin: Swin with a token-sparsified third stage.

    A conv stem (two 3x3 stride-2 conv-BN-Hardswish) and plain Swin stages
    1, 2 and 4; stage 3 is made of dumbbell units of 6 blocks that run most of
    their work on s*s semantic tokens per 7x7 window and then recover the
    full-resolution image tokens, so all four outputs are dense feature maps
    at strides 4, 8, 16 and 32.

    ``variant='imagenet'`` computes the released ImageNet classifier instead
    (:mod:`~stvit_mm.models.layers.imagenet_unit`): same parameters, so the
    weights of one initialise the other, as the release did. With
    ``out_indices=(3,)`` its ``norm3`` is the classifier's final norm
    (``configs/imagenet/``).

    Defaults build STViT-R-Swin-T. S: ``depths=(2, 2, 18, 2),
    num_heads=(3, 6, 12, 24)``; B: ``embed_dims=128, depths=(2, 2, 18, 2),
    num_heads=(4, 8, 16, 32)``.

    Args:
        in_channels (int): Input image channels. Defaults to 3.
        embed_dims (int): Channels C of stage 1; stage i has C * 2**i.
            Defaults to 96.
        depths (Sequence[int]): Blocks per stage; stage 3's must be a
            multiple of 6. Defaults to (2, 2, 6, 2).
        num_heads (Sequence[int]): Attention heads per stage.
            Defaults to (3, 6, 12, 24).
        window_size (int): Swin window side. Defaults to 7.
        mlp_ratio (float): MLP hidden channels / channels. Defaults to 4.
        qkv_bias (bool): Bias in q/k/v projections. Defaults to True.
        drop_rate (float): Dropout after projections. Defaults to 0.
        attn_drop_rate (float): Dropout on attention weights. Defaults to 0.
        drop_path_rate (float): Stochastic depth, rising linearly over all
            blocks. Defaults to 0.1.
        out_indices (Sequence[int]): Stages whose (normed) outputs are
            returned. Defaults to (0, 1, 2, 3).
        frozen_stages (int): Stages to freeze (eval mode, no gradients):
            -1 none, 0 the stem, k the stem and stages 1..k.
            Defaults to -1.
        with_cp (bool): Checkpoint block activations to save memory.
            Defaults to False.
        norm_cfg (dict): Norm of the transformer blocks and outputs.
            Defaults to ``dict(type='LN')``.
        stem_norm_cfg (dict): Norm of the conv stem. Defaults to BN.
        act_cfg (dict): MLP activation. Defaults to GELU.
        sample_window_size (int): s, semantic tokens per window side
            (s*s per window). A pure inference dial: the same weights run
            with any s. Defaults to 3.
        semantic_key_windows (Sequence[int]): Image-token key neighbourhoods
            of the two semantic-token generation steps. Defaults to (14, 21).
        recovery_key_window (int): Semantic-token key neighbourhood of the
            recovery block. Defaults to 27.
        pad_mask (str): ``'official'`` reproduces the released masking of
            padded keys (only the bottom-right corner, see
            :mod:`stvit_mm.models.layers.geometry`); ``'exact'`` masks every
            padded key and keeps padding out of the token pooling.
            Defaults to ``'official'``.
        layer_scale_init_value (float): Initial layer scale of the semantic
            blocks. Defaults to 1e-5.
        variant (str): ``'detection'``: the released detection backbone
            (two-step token generation over 14/21 neighbourhoods, recovery
            from a 27-token neighbourhood); ``'imagenet'``: the released
            ImageNet classifier (one-step generation over a 10x10
            neighbourhood, global blocks, image tokens attending to all
            semantic tokens, and no shift where a map fits in one window).
            Defaults to ``'detection'``.
        neighbourhood_impl (str): Backend of the generation steps'
            neighbourhood attention: ``'strips'``, ``'key_windows'``,
            ``'gather'``, or ``'auto'`` (strips on the CPU, key windows
            under graph capture, the gather on CUDA); see
            :mod:`stvit_mm.models.layers.neighbourhood_attention` and
            ``docs/attention_backends.md``. May be changed on a built
            model. Defaults to ``'auto'``.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` loads converted or released weights (whole
            detector checkpoints too: the ``backbone.`` part is taken).
            Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 7,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 stem_norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 sample_window_size: int = 3,
                 semantic_key_windows: Sequence[int] = (14, 21),
                 recovery_key_window: int = 27,
                 pad_mask: str = 'official',
                 layer_scale_init_value: float = 1e-5,
                 variant: str = 'detection',
                 neighbourhood_impl: str = 'auto',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        depths, num_heads = tuple(depths), tuple(num_heads)
        out_indices = tuple(out_indices)
        _check_config(in_channels, embed_dims, depths, num_heads, window_size,
                      out_indices, frozen_stages, sample_window_size,
                      tuple(semantic_key_windows), recovery_key_window,
                      pad_mask, variant, neighbourhood_impl)
        self.in_channels = in_channels
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.variant = variant
        self.num_features = [embed_dims * 2**i for i in range(NUM_STAGES)]

        self.patch_embed = ConvStem(in_channels, embed_dims, stem_norm_cfg)
        total = sum(depths)
        # Plain floats (not torch.linspace) so the model can be built on the
        # meta device, e.g. to check a checkpoint's keys and shapes.
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        swin_cfg = dict(window_size=window_size, mlp_ratio=mlp_ratio,
                        qkv_bias=qkv_bias, drop_rate=drop_rate,
                        attn_drop_rate=attn_drop_rate, act_cfg=act_cfg,
                        norm_cfg=norm_cfg,
                        shift_single_window=variant == 'detection')
        block_cfg = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                         drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                         layer_scale_init_value=layer_scale_init_value,
                         act_cfg=act_cfg, norm_cfg=norm_cfg)
        self.stages = ModuleList()
        for i, (dims, depth, heads) in enumerate(
                zip(self.num_features, depths, num_heads)):
            stage_rates = rates[sum(depths[:i]):sum(depths[:i + 1])]
            if i == SPARSIFIED_STAGE:
                stage = SparsifiedStage(
                    dims, depth, heads, stage_rates, window_size,
                    sample_window_size, semantic_key_windows,
                    recovery_key_window, pad_mask, with_cp,
                    swin_cfg={k: v for k, v in swin_cfg.items()
                              if k != 'window_size'},
                    block_cfg=block_cfg,
                    unit_type=(DumbbellUnit if variant == 'detection' else
                               ReleaseImageNetUnit),
                    neighbourhood_impl=neighbourhood_impl)
            else:
                stage = SwinStage(dims, depth, heads, stage_rates, with_cp,
                                  **swin_cfg)
            self.stages.append(stage)
        self.downsamples = ModuleList([
            PatchMerging(self.num_features[i], norm_cfg)
            for i in range(NUM_STAGES - 1)
        ])
        for i in out_indices:
            self.add_module(f'norm{i}',
                            build_norm_layer(norm_cfg,
                                             self.num_features[i])[1])
        self._freeze_stages()

    @property
    def sample_window_size(self) -> int:
        return self.stages[SPARSIFIED_STAGE].sample_window_size

    @sample_window_size.setter
    def sample_window_size(self, value: int):
        stage = self.stages[SPARSIFIED_STAGE]
        limit = min(stage.window_size, stage.recovery_key_window)
        if not 1 <= value <= limit:
            raise ValueError(
                f'sample_window_size must be in 1..{limit} (at most '
                f'window_size and recovery_key_window), got {value}')
        stage.sample_window_size = value

    @property
    def neighbourhood_impl(self) -> str:
        return self.stages[SPARSIFIED_STAGE].neighbourhood_impl

    @neighbourhood_impl.setter
    def neighbourhood_impl(self, impl: str):
        self.stages[SPARSIFIED_STAGE].neighbourhood_impl = impl

    def forward(self, x: Tensor) -> tuple:
        """
        Args:
            x (Tensor): Images, (N, in_channels, H, W), any H, W >= 1.

        Returns:
            tuple[Tensor]: For each index in ``out_indices``, a feature map
            (N, C * 2**i, ceil(H / 2**(i+2)), ceil(W / 2**(i+2))).
        """
        self._check_input(x)
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
            if i < len(self.downsamples):
                x = self.downsamples[i](x)
        return tuple(outs)

    def _check_input(self, x):
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(
                f'STViTRSwin expects images of shape (N, {self.in_channels}, '
                f'H, W), got {shape}')
        N, C, H, W = x.shape
        if C != self.in_channels:
            raise ValueError(
                f'STViTRSwin was built for {self.in_channels}-channel images '
                f'(in_channels={self.in_channels}), got {C} channels in input '
                f'of shape {tuple(x.shape)}')
        if N == 0 or H == 0 or W == 0:
            raise ValueError(
                f'STViTRSwin got an empty input of shape {tuple(x.shape)}; '
                'batch, height and width must all be at least 1')

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed]
        for i in range(self.frozen_stages):
            frozen.append(self.stages[i])
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
            # As in mmdet's Swin, a stage owns the patch merging after it.
            if i < len(self.downsamples):
                frozen.append(self.downsamples[i])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self):
        if self.init_cfg is None or self.init_cfg.get('type') != 'Pretrained':
            self._init_from_scratch()
            if self.init_cfg is not None:
                super().init_weights()
            return
        self.load_pretrained(self.init_cfg['checkpoint'])

    def _init_from_scratch(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=.02, bias=0.)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, 1.0, bias=0.)
            elif hasattr(m, 'relative_position_bias_table'):
                m.init_weights()

    def load_pretrained(self, checkpoint: str):
        """Load released, converted or whole-detector weights.

        The ImageNet release loads as the release's detectors loaded it:
        its classifier and derived buffers are dropped and the output norms
        ``norm0..norm3``, which a classifier does not have, start at weight
        1, bias 0; each is reported by name in the log. Everything else must
        fit exactly.

        Args:
            checkpoint (str): Path or URL. Released weights are translated
                on the fly; ``backbone.`` and ``module.`` prefixes are
                stripped.

        Raises:
            CheckpointMismatchError: If the checkpoint does not fit this
                architecture; the message lists the missing, unexpected and
                mis-shaped keys.
        """
        logger = MMLogger.get_current_instance()
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        try:
            weights = read_release(ckpt)
        except ValueError as e:
            raise CheckpointMismatchError(f'{checkpoint}: {e}') from None
        own = self.state_dict()
        fresh = weights.output_norms_to_initialise(own)
        diff = diff_state_dicts(own, weights.backbone, may_be_missing=fresh)
        diff.unexpected = sorted(diff.unexpected + weights.unknown)
        if diff:
            raise CheckpointMismatchError(diff.message(
                checkpoint,
                f'STViTRSwin (embed_dims={self.num_features[0]}, '
                'depths/heads as configured)',
                'Check that the config (S vs B) matches the checkpoint.'))
        self.load_state_dict(weights.backbone, strict=not fresh)
        for why, keys in weights.dropped.items():
            logger.info(f'STViTRSwin: {checkpoint}: left out {len(keys)} '
                        f'{why}: {short_list(keys)}')
        if fresh:
            for i in self.out_indices:
                constant_init(getattr(self, f'norm{i}'), 1.0, bias=0.)
            logger.warning(
                f'STViTRSwin: {checkpoint} is ImageNet pretraining, which '
                f'has no per-stage output norms; initialised '
                f'{", ".join(fresh)} to weight 1, bias 0, as the released '
                'detectors did.')
        logger.info(f'STViTRSwin: loaded {len(weights.backbone)} tensors '
                    f'from {checkpoint}')


def _check_config(in_channels, embed_dims, depths, num_heads, window_size,
                  out_indices, frozen_stages, sample_window_size,
                  semantic_key_windows, recovery_key_window, pad_mask,
                  variant, neighbourhood_impl):
    """Refuse impossible configurations with a message naming the argument
    and what is allowed."""

    def fail(msg):
        raise ValueError(f'STViTRSwin: {msg}')

    if in_channels < 1:
        fail(f'in_channels must be >= 1, got {in_channels}')
    if len(depths) != NUM_STAGES or len(num_heads) != NUM_STAGES:
        fail(f'depths and num_heads need {NUM_STAGES} entries (one per '
             f'stage), got depths={depths}, num_heads={num_heads}')
    if any(d < 1 for d in depths):
        fail(f'every stage needs at least one block, got depths={depths}')
    if depths[SPARSIFIED_STAGE] % UNIT_DEPTH:
        fail(f'depths[{SPARSIFIED_STAGE}] (the sparsified stage) must be a '
             f'multiple of {UNIT_DEPTH}, one dumbbell unit per {UNIT_DEPTH} '
             f'blocks (e.g. 6, 12, 18), got {depths[SPARSIFIED_STAGE]}')
    if embed_dims < 2 or embed_dims % 2:
        fail(f'embed_dims must be even and >= 2 (the stem halves it), got '
             f'{embed_dims}')
    for i, heads in enumerate(num_heads):
        if heads < 1 or (embed_dims * 2**i) % heads:
            fail(f'num_heads[{i}]={heads} must divide the stage channels '
                 f'{embed_dims * 2**i}')
    if window_size < 1:
        fail(f'window_size must be >= 1, got {window_size}')
    if not 1 <= sample_window_size <= window_size:
        fail(f'sample_window_size must be in 1..{window_size} '
             f'(window_size), got {sample_window_size}')
    if len(semantic_key_windows) != 2:
        fail('semantic_key_windows needs 2 entries (one per generation '
             f'step), got {semantic_key_windows}')
    if any(k < window_size for k in semantic_key_windows):
        fail(f'semantic_key_windows must each be >= window_size '
             f'({window_size}), got {semantic_key_windows}')
    if recovery_key_window < sample_window_size:
        fail('recovery_key_window (in semantic tokens) must be >= '
             f'sample_window_size ({sample_window_size}), got '
             f'{recovery_key_window}')
    if variant not in VARIANTS:
        fail(f'variant must be one of {VARIANTS}, got {variant!r}')
    if pad_mask not in PAD_MASK_MODES:
        fail(f'pad_mask must be one of {PAD_MASK_MODES}, got {pad_mask!r}')
    if neighbourhood_impl not in NEIGHBOURHOOD_IMPLS:
        fail(f'neighbourhood_impl must be one of {NEIGHBOURHOOD_IMPLS}, got '
             f'{neighbourhood_impl!r}')
    if not out_indices or any(i not in range(NUM_STAGES)
                              for i in out_indices):
        fail(f'out_indices must be a non-empty subset of 0..3, got '
             f'{out_indices}')
    if not -1 <= frozen_stages <= NUM_STAGES:
        fail(f'frozen_stages must be in -1..{NUM_STAGES}, got '
             f'{frozen_stages}')
