"""Measuring a Swin / STViT-R pair: time, memory and profiles per setting.

Both models of a pair live in ONE process and are timed interleaved
(:func:`stvit_mm.analysis.timing.time_interleaved`) at every selected
device, precision, input size and batch size; beside the times stand the
peak memories (:mod:`stvit_mm.analysis.memory`) and a FLOPs ratio
computed by the caller (:func:`macs_ratio` with its count).
"""
import copy
import dataclasses
import os.path as osp
import sys
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from .memory import peak_mib
from .models import PAIR_CONFIGS, Subject, build_subject, make_batch
from .options import BenchmarkSettings
from .profiling import profile_table
from .tables import format_mib, format_ms, format_ratio
from .timing import make_runner, synchronizer, time_interleaved

__all__ = [
    'COMMON_HEADERS', 'backbone_pairs', 'common_cells', 'common_headers',
    'compare_pair', 'macs_ratio', 'measure_settings', 'on_device',
    'pair_subjects'
]

#: Columns of a measured setting (:func:`common_cells`).
COMMON_HEADERS = ['Device', 'Precision', 'Input', 'Batch', 'Swin (ms)',
                  'STViT-R (ms)', 'Time STViT-R / Swin',
                  'FLOPs STViT-R / Swin', 'Swin peak (MiB)',
                  'STViT-R peak (MiB)', 'Memory STViT-R / Swin']
FLOPS_HEADER = 'FLOPs STViT-R / Swin'

Size = Tuple[int, int]


def common_headers(flops_header: str = FLOPS_HEADER) -> List[str]:
    """:data:`COMMON_HEADERS`, the FLOPs column titled ``flops_header``
    (what the table's count covers)."""
    return [flops_header if h == FLOPS_HEADER else h for h in COMMON_HEADERS]


def macs_ratio(count: Callable[[torch.nn.Module, Sequence[int]], int],
               models: Sequence[torch.nn.Module], size: Size,
               batch: int) -> str:
    """The FLOPs cell of a setting: STViT-R's ``count(model, (batch, 3, H,
    W))`` over Swin's (bind ``count`` with :func:`functools.partial` to get
    the ``flops_ratio`` of :func:`measure_settings`)."""
    macs = [count(m, (batch, 3, *size)) for m in models]
    return format_ratio(macs[1], macs[0])


def pair_subjects(task: str, size_key: str) -> List[Subject]:
    """Swin and STViT-R subjects of one backbone size of
    :data:`~stvit_mm.analysis.models.PAIR_CONFIGS` (``task`` ``'seg'``:
    the ADE20K configs, else the COCO ones)."""
    configs = PAIR_CONFIGS[size_key]['ade' if task == 'seg' else 'coco']
    return [Subject(task, cfg, name=f'{name}-{size_key}')
            for cfg, name in zip(configs, ('Swin', 'STViT-R-Swin'))]


def backbone_pairs(settings: BenchmarkSettings
                   ) -> List[Tuple[str, List[Subject]]]:
    """(model label, [Swin, STViT-R]) backbone subjects per size of
    ``settings.models``, or the pair of ``settings.backbone_configs``
    (label ``'custom'``); with ``settings.neighbourhood_impls``, one pair
    per backend (label ``'S key_windows'``, ...), Swin timed again beside
    each."""
    if settings.backbone_configs:
        pairs = [('custom', [Subject('backbone', cfg,
                                     name=osp.basename(cfg))
                             for cfg in settings.backbone_configs])]
    else:
        pairs = [(key, pair_subjects('backbone', key))
                 for key in settings.models]
    if not settings.neighbourhood_impls:
        return pairs
    return [(f'{key} {impl}', [swin, dataclasses.replace(
        stvit, neighbourhood_impl=impl, name=f'{stvit.name} {impl}')])
            for key, (swin, stvit) in pairs
            for impl in settings.neighbourhood_impls]


def on_device(models: Sequence[torch.nn.Module],
              device: str) -> List[torch.nn.Module]:
    """The models themselves on the CPU, copies on another device (the CPU
    models stay for FLOPs counting and later CPU settings)."""
    if device == 'cpu':
        return list(models)
    return [copy.deepcopy(m).to(device) for m in models]


def compare_pair(subjects: Sequence[Subject],
                 models: Sequence[torch.nn.Module], size: Size, batch: int,
                 device: str, dtype: str,
                 settings: BenchmarkSettings) -> Dict:
    """Time (interleaved), measure the memory of and (with
    ``settings.profile``) profile a Swin / STViT-R pair at one setting.

    Args:
        subjects (Sequence[Subject]): The pair, baseline first.
        models (Sequence[nn.Module]): Its models, on ``device``.
        size (tuple): Input (H, W).
        batch (int): Batch size.
        device (str): ``'cpu'`` or ``'cuda'``.
        dtype (str): Precision (a key of
            :data:`~stvit_mm.analysis.timing.DTYPES`).
        settings (BenchmarkSettings): Repeats, memory, training, profile.

    Returns:
        dict: ``times`` (s), ``mems`` (MiB or None) and ``outputs`` (the
        last outputs of whole detectors, for detection counts; else None),
        each in pair order.
    """
    task = subjects[0].task
    train = settings.train and task == 'backbone'
    data = make_batch(task, batch, size, device)
    runners = [make_runner(m, task, data, device, dtype, train)
               for m in models]
    for m in models:
        m.train(train)  # mmdet's Swin.train() returns None: no chaining
    try:
        times, outputs = time_interleaved(runners, settings.warmup,
                                          settings.repeat,
                                          synchronizer(device))
        mems = [None, None]
        if not settings.no_memory:
            mems = [peak_mib(dataclasses.replace(s, train=train), run,
                             device, batch, size, settings.threads)
                    for s, run in zip(subjects, runners)]
        if settings.profile and task == 'backbone':
            for s, run in zip(subjects, runners):
                print(f'### Profile: {s.name}, {device} {dtype} '
                      f'{size[0]}x{size[1]} x{batch}'
                      f'{", training step" if train else ""}\n\n```\n'
                      f'{profile_table(run, device, settings.profile)}\n'
                      '```\n', flush=True)
    finally:
        for m in models:
            m.eval()
    return dict(times=times, mems=mems,
                outputs=outputs if task == 'det' else None)


def measure_settings(subjects: Sequence[Subject], sizes: Sequence[Size],
                     flops_ratio: Callable[[List[torch.nn.Module], Size,
                                            int], str],
                     settings: BenchmarkSettings,
                     batch_sizes: Optional[Sequence[int]] = None
                     ) -> Iterator[Tuple]:
    """Build a Swin / STViT-R pair once and measure it at every selected
    device, precision, size and batch size.

    Args:
        subjects (Sequence[Subject]): The pair, baseline first.
        sizes (Sequence[tuple]): (H, W) inputs.
        flops_ratio (Callable): ``(cpu_models, size, batch) -> str``.
        settings (BenchmarkSettings): Devices, precisions, batch sizes.
        batch_sizes (Sequence[int], optional): Batch sizes instead of
            ``settings.batch_sizes``.

    Yields:
        tuple: ``(device, dtype, size, batch, flops ratio, result of
        compare_pair)``.
    """
    cpu_models = [build_subject(s) for s in subjects]
    flops = {}
    for device in settings.devices:
        models = on_device(cpu_models, device)
        dtypes = settings.dtypes if device == 'cuda' else ['fp32']
        for dtype in dtypes:
            for size in sizes:
                for batch in batch_sizes or settings.batch_sizes:
                    if (size, batch) not in flops:
                        flops[size, batch] = flops_ratio(cpu_models, size,
                                                         batch)
                    res = compare_pair(subjects, models, size, batch, device,
                                       dtype, settings)
                    print(f'  done: {subjects[1].name} {device} {dtype} '
                          f'{size[0]}x{size[1]} x{batch}', file=sys.stderr,
                          flush=True)
                    yield device, dtype, size, batch, flops[size, batch], res


def common_cells(device: str, dtype: str, size: Size, batch: int,
                 flops: str, res: Dict) -> List:
    """The :data:`COMMON_HEADERS` cells of one measured setting (a tuple of
    :func:`measure_settings`)."""
    t, mem = res['times'], res['mems']
    return [device, dtype, f'{size[0]}x{size[1]}', batch, format_ms(t[0]),
            format_ms(t[1]), format_ratio(t[1], t[0]), flops,
            format_mib(mem[0]), format_mib(mem[1]),
            format_ratio(mem[1], mem[0])]
