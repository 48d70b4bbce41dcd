"""The settings of the analysis tools, checked.

Each tool's command line fills one settings object: options it was not
given take the object's defaults (the tools' parsers leave them out,
``argument_default=argparse.SUPPRESS``), and a setting that cannot be used
is a :class:`~stvit_mm.errors.ConfigError`, which :func:`parse_settings`
turns into the parser's usage error (exit status 2).
"""
import argparse
import dataclasses
import re
from typing import List, Optional, Sequence, Tuple, Type, TypeVar

import torch

from stvit_mm.errors import ConfigError

from .models import PAIR_CONFIGS, SWIN_CLS_MIN_SIDE
from .timing import DTYPES

__all__ = ['BenchmarkSettings', 'FlopsSettings', 'parse_settings', 'size_arg']

Size = Tuple[int, int]
Settings = TypeVar('Settings')


def size_arg(text: str) -> Size:
    """Parse ``HxW`` (e.g. ``800x1216``), for argparse's ``type``.

    Raises:
        argparse.ArgumentTypeError: If it is not two positive integers.
    """
    match = re.fullmatch(r'(\d+)[xX](\d+)', text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(
            f'expected HxW with positive integers, e.g. 800x1216, got '
            f'{text!r}')
    return int(match[1]), int(match[2])


def parse_settings(parser: argparse.ArgumentParser, settings: Type[Settings],
                   argv: Optional[Sequence[str]] = None) -> Settings:
    """Parse a command line into a settings object.

    Args:
        parser (argparse.ArgumentParser): The tool's parser; its options'
            destinations are the settings' fields, options not given are
            left out (``argument_default=argparse.SUPPRESS``).
        settings (type): :class:`FlopsSettings` or
            :class:`BenchmarkSettings`.
        argv (Sequence[str], optional): Arguments; ``sys.argv`` when None.

    Returns:
        The settings. A :class:`~stvit_mm.errors.ConfigError` while
        checking them exits through ``parser.error`` (status 2).
    """
    args = parser.parse_args(argv)
    try:
        return settings(**vars(args))
    except ConfigError as e:
        parser.error(str(e))


def _check_models(models: Sequence[str]) -> None:
    unknown = sorted(set(models) - set(PAIR_CONFIGS))
    if unknown:
        raise ConfigError(f'unknown model sizes {unknown}; choose from '
                          f'{sorted(PAIR_CONFIGS)}')


@dataclasses.dataclass
class FlopsSettings:
    """What ``tools/analysis/get_flops.py`` counts.

    Args:
        models (list[str]): Backbone sizes of the paper table.
        shapes (list[tuple]): Extra (H, W) inputs (``'custom'`` rows of
            the paper table); with ``configs``, the inputs to count at.
        no_paper_shapes (bool): Leave out the paper's inputs.
        configs (list[str]): Count these configs instead of the paper
            table; inputs from ``shapes``, else the paper's input of the
            config's library (mmdet: COCO, mmseg: ADE20K).
        whole_model (bool): Also count the whole detector / segmentor.

    Raises:
        ConfigError: A size is not positive, or no input is left.
    """
    models: List[str] = dataclasses.field(default_factory=lambda: ['S', 'B'])
    shapes: List[Size] = dataclasses.field(default_factory=list)
    no_paper_shapes: bool = False
    configs: List[str] = dataclasses.field(default_factory=list)
    whole_model: bool = False

    def __post_init__(self):
        self.shapes = [tuple(s) for s in self.shapes]
        if any(h < 1 or w < 1 for h, w in self.shapes):
            raise ConfigError(
                f'--shape sizes must be positive, got {self.shapes}')
        _check_models(self.models)
        if not self.configs and self.no_paper_shapes and not self.shapes:
            raise ConfigError('--no-paper-shapes needs at least one --shape')


@dataclasses.dataclass
class BenchmarkSettings:
    """What ``tools/analysis/benchmark.py`` measures; the fields are its
    options (see its ``--help``).

    ``devices`` defaults to the CPU, plus CUDA when available; ``dtypes``
    apply to CUDA (the CPU runs fp32); ``plot`` is the PNG of the token
    sweep; ``backbone_configs`` / ``det_configs`` / ``seg_configs``
    replace the project's pairs of ``models`` (baseline first);
    ``classifier`` adds the ImageNet classifiers of ``models`` at
    ``cls_sizes`` and ``cls_batch_sizes``.

    Raises:
        ConfigError: A setting cannot be used (CUDA unavailable, a count
            below 1, nothing to do, ``profile`` without the backbone
            table, a classifier input smaller than mmpretrain's Swin
            takes).
    """
    models: List[str] = dataclasses.field(default_factory=lambda: ['S', 'B'])
    sizes: List[Size] = dataclasses.field(
        default_factory=lambda: [(800, 1216), (800, 1333), (512, 512)])
    batch_sizes: List[int] = dataclasses.field(
        default_factory=lambda: [1, 2])
    devices: Optional[List[str]] = None
    dtypes: List[str] = dataclasses.field(
        default_factory=lambda: list(DTYPES))
    threads: int = 2
    repeat: int = 5
    warmup: int = 1
    no_memory: bool = False
    train: bool = False
    runtime: str = 'pytorch'
    profile: Optional[int] = None
    no_backbone: bool = False
    plot: Optional[str] = None
    plot_size: Optional[Size] = None
    sample_sizes: List[int] = dataclasses.field(
        default_factory=lambda: [2, 3, 4])
    end_to_end: bool = False
    tasks: List[str] = dataclasses.field(
        default_factory=lambda: ['det', 'seg'])
    backbone_configs: Optional[List[str]] = None
    det_configs: Optional[List[str]] = None
    seg_configs: Optional[List[str]] = None
    det_sizes: List[Size] = dataclasses.field(
        default_factory=lambda: [(800, 1333)])
    seg_sizes: List[Size] = dataclasses.field(
        default_factory=lambda: [(512, 512)])
    neighbourhood_impls: Optional[List[str]] = None
    classifier: bool = False
    cls_sizes: List[Size] = dataclasses.field(
        default_factory=lambda: [(224, 224)])
    cls_batch_sizes: List[int] = dataclasses.field(
        default_factory=lambda: [1, 32])

    def __post_init__(self):
        if self.neighbourhood_impls:
            from stvit_mm.models.layers.neighbourhood_attention import \
                NEIGHBOURHOOD_IMPLS
            unknown = sorted(set(self.neighbourhood_impls) -
                             set(NEIGHBOURHOOD_IMPLS))
            if unknown:
                raise ConfigError(
                    f'--neighbourhood-impl: unknown {unknown}; choose from '
                    f'{NEIGHBOURHOOD_IMPLS}')
        if self.devices is None:
            gpu = torch.cuda.is_available() and self.runtime == 'pytorch'
            self.devices = ['cpu'] + (['cuda'] if gpu else [])
        _check_models(self.models)
        if 'cuda' in self.devices and not torch.cuda.is_available():
            raise ConfigError(
                '--devices cuda: torch.cuda.is_available() is False')
        if min(self.batch_sizes + self.cls_batch_sizes) < 1 or \
                self.repeat < 1 or self.warmup < 0 or self.threads < 1:
            raise ConfigError('--batch-sizes, --cls-batch-sizes, --repeat '
                              'and --threads must be >= 1, --warmup >= 0')
        small = [f'{h}x{w}' for h, w in self.cls_sizes
                 if min(h, w) < SWIN_CLS_MIN_SIDE]
        if small:
            raise ConfigError(
                f"--cls-sizes {' '.join(small)}: mmpretrain's Swin "
                f'classifiers take sides of at least {SWIN_CLS_MIN_SIDE} '
                'px (their last stage must hold a 7x7 window)')
        if min(self.sample_sizes) < 1:
            raise ConfigError('--sample-sizes must be >= 1')
        if self.no_backbone and not (self.plot or self.end_to_end
                                     or self.classifier):
            raise ConfigError('--no-backbone leaves nothing to do without '
                              '--plot, --end-to-end or --classifier')
        if self.runtime == 'onnxruntime' and (
                self.train or self.profile or self.no_backbone
                or self.devices != ['cpu']):
            raise ConfigError(
                '--runtime onnxruntime times the backbone table on the CPU: '
                'leave out --train, --profile, --no-backbone and --devices '
                'cuda')
        if self.no_backbone and self.profile:
            raise ConfigError('--profile applies to the backbone table')
