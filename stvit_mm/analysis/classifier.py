"""ImageNet classifiers: STViT-R-Swin against mmpretrain's Swin, whole.

The project's classifiers
(:data:`~stvit_mm.analysis.models.CLASSIFIER_CONFIGS`:
``configs/imagenet/stvit_r_swin_{s,b}_16xb64_in1k.py``, mmpretrain's
``ImageClassifier`` with ``STViTRSwin(variant='imagenet')``) against
mmpretrain's Swin classifier of the same width (``swin-small_16xb64_in1k.py``
/ ``swin-base_16xb64_in1k.py``, the pair that ``tools/analysis/get_flops.py
--config`` counts, :func:`~stvit_mm.analysis.flops.imagenet_swin_config`),
random weights, inference.

Both are timed alike: ``model(inputs, mode='tensor')`` on a float batch that
stands for normalised images, i.e. backbone, pooling neck and linear head up
to the logits. The data preprocessor and ``predict``'s softmax and data
samples are left out: they are the same for both models and no part of the
network. The pair runs interleaved in one process and its memory is measured
as in the other tables (:func:`~stvit_mm.analysis.pairs.measure_settings`);
the FLOPs ratio is that of the whole classifiers
(:func:`~stvit_mm.analysis.flops.count_whole_model`, the figures of
``get_flops.py --config CONFIG --whole-model``).
"""
import functools
from typing import List

from stvit_mm.apis import load_config

from .flops import count_whole_model, imagenet_swin_config
from .models import CLASSIFIER_CONFIGS, Subject
from .options import BenchmarkSettings
from .pairs import common_cells, common_headers, macs_ratio, measure_settings
from .tables import markdown_table

__all__ = ['CLASSIFIER_NOTE', 'classifier_subjects', 'classifier_table']

#: Printed under the table.
CLASSIFIER_NOTE = (
    "Baselines: mmpretrain's swin-small_16xb64_in1k.py / "
    'swin-base_16xb64_in1k.py. Timed: backbone, pooling and head up to the '
    'logits on a float batch (no data preprocessor, no softmax). Model '
    'FLOPs: the whole classifiers, as tools/analysis/get_flops.py --config '
    'CONFIG --whole-model counts them.\n')


def classifier_subjects(size_key: str) -> List[Subject]:
    """mmpretrain's Swin classifier and the STViT-R-Swin one of a size of
    :data:`~stvit_mm.analysis.models.CLASSIFIER_CONFIGS` (baseline first).

    Raises:
        ConfigError: If a config cannot be loaded.
    """
    config = CLASSIFIER_CONFIGS[size_key]
    swin = imagenet_swin_config(load_config(config))
    return [Subject('cls', swin, name=f'Swin-{size_key} classifier'),
            Subject('cls', config,
                    name=f'STViT-R-Swin-{size_key} classifier')]


def classifier_table(settings: BenchmarkSettings) -> str:
    """Classifier inference latency / memory of every selected setting.

    Args:
        settings (BenchmarkSettings): ``models``, ``cls_sizes``,
            ``cls_batch_sizes``, devices, precisions, repeats, memory.

    Returns:
        str: The markdown table (first column: the model size).
    """
    rows = []
    flops_ratio = functools.partial(macs_ratio, count_whole_model)
    for key in settings.models:
        for setting in measure_settings(classifier_subjects(key),
                                        settings.cls_sizes, flops_ratio,
                                        settings, settings.cls_batch_sizes):
            rows.append([key] + common_cells(*setting))
    headers = ['Model'] + common_headers('Model FLOPs STViT-R / Swin')
    return markdown_table(headers, rows)
