"""Whole-model inference of Swin against STViT-R-Swin, end to end.

``model.test_step`` on uint8 images with DetDataSample / SegDataSample
metainfo, i.e. data preprocessing, backbone, neck, heads and
post-processing: Cascade Mask R-CNN (``configs/cascade_*_3x.py``, mmdet's
Swin) and UperNet (``configs/upernet_*_ade20k.py``, mmseg's Swin), or any
pair of configs. The weights are random, so the detector's final score
threshold is set to 0 (:func:`stvit_mm.analysis.models.build_subject`):
every image then yields ``max_per_img`` (100) detections and the mask heads
do the work a trained model's do (the table shows the detections per
image). The FLOPs ratio of these rows is the whole model's
(:func:`stvit_mm.analysis.flops.count_whole_model`).
"""
import functools
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch

from .flops import count_whole_model
from .models import Subject, make_batch
from .options import BenchmarkSettings
from .pairs import (common_cells, common_headers, measure_settings,
                    pair_subjects)
from .tables import format_ratio, markdown_table

__all__ = ['end_to_end_pairs', 'end_to_end_table']


def end_to_end_pairs(settings: BenchmarkSettings
                     ) -> List[Tuple[str, str, List[Subject]]]:
    """(task, model label, [Swin, STViT-R]) of every end-to-end comparison:
    the project's configs per size of ``settings.models``, or the pair of
    ``settings.det_configs`` / ``settings.seg_configs`` (label
    ``'custom'``)."""
    pairs = []
    for task in settings.tasks:
        override = (settings.det_configs if task == 'det' else
                    settings.seg_configs)
        if override:
            pairs.append((task, 'custom', [
                Subject(task, cfg, name=osp.basename(cfg))
                for cfg in override]))
        else:
            pairs += [(task, key, pair_subjects(task, key))
                      for key in settings.models]
    return pairs


def _model_flops_ratio(models: Sequence[torch.nn.Module],
                       size: Tuple[int, int], batch: int, task: str) -> str:
    """Whole-model MACs ratio at the input the network sees (after the data
    preprocessor's padding)."""
    data = make_batch(task, batch, size, 'cpu')
    with torch.no_grad():
        shape = tuple(models[0].data_preprocessor(data, False)['inputs'].shape)
    macs = [count_whole_model(m, shape) for m in models]
    return format_ratio(macs[1], macs[0])


def _detections(outputs: Optional[list]) -> str:
    """Mean detections per image of each model's last output."""
    if outputs is None:
        return ''
    counts = []
    for samples in outputs:
        per_image = [len(s.pred_instances) for s in samples]
        counts.append(f'{sum(per_image) / len(per_image):.0f}')
    return ' / '.join(counts)


def end_to_end_table(settings: BenchmarkSettings) -> str:
    """Whole-model inference latency / memory of every selected setting.

    Args:
        settings (BenchmarkSettings): Pairs (``tasks``, ``models`` or the
            config pairs), ``det_sizes``, ``seg_sizes``, devices, ...

    Returns:
        str: The markdown table.
    """
    rows = []
    for task, key, subjects in end_to_end_pairs(settings):
        sizes = settings.det_sizes if task == 'det' else settings.seg_sizes
        label = ('Cascade Mask R-CNN' if task == 'det' else 'UperNet') \
            if key != 'custom' else task
        ratio = functools.partial(_model_flops_ratio, task=task)
        for setting in measure_settings(subjects, sizes, ratio, settings):
            rows.append([key, label] + common_cells(*setting) +
                        [_detections(setting[-1]['outputs'])])
    headers = (['Model', 'Task'] +
               common_headers('Model FLOPs STViT-R / Swin') +
               ['Detections / image'])
    return markdown_table(headers, rows)
