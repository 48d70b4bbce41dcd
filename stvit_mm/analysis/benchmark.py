"""Latency and peak memory of STViT-R-Swin against mmdet's Swin.

What ``tools/analysis/benchmark.py`` prints (:func:`run_benchmark`).

The backbones come from the project's COCO configs (``model.backbone`` of
``configs/cascade_{swin,stvit_r_swin}_{s,b}_3x.py``, ``init_cfg=None``;
drop-path rates do not matter in eval mode, so the ADE20K configs' backbones
run the same computation). Both models of a pair live in ONE process and are
timed interleaved (Swin, STViT-R, Swin, STViT-R, ...) after ``warmup``
rounds; a row reports the median of ``repeat`` forwards, the ratio
STViT-R / Swin, and beside it the FLOPs ratio from
:func:`stvit_mm.utils.flops.count_macs` at the same input
(:mod:`stvit_mm.analysis.pairs`).

Devices and precision:

* CPU: fp32, ``torch.set_num_threads(threads)``.
* CUDA (only when ``torch.cuda.is_available()``): fp32, and fp16 / bf16
  under ``torch.autocast``; every timed forward is bracketed by
  ``torch.cuda.synchronize()``.

Peak memory (MiB) is the memory a forward needs ON TOP of the weights and
the input (:mod:`stvit_mm.analysis.memory`); ``no_memory`` skips it.

``train`` times training steps instead of inference in the backbone
table: forward and backward of the sum of the four outputs, models in train
mode (drop path as configured), fp16 / bf16 under autocast on CUDA. The
optimizer step is left out: it is one elementwise update per parameter, and
the two backbones have about the same parameter count. Peak memory is then
that of forward + backward (gradients included) above weights and input; on
the CPU it is measured by the same subprocess probe. The FLOPs column is
then the ratio of forward + backward, measured
(:func:`stvit_mm.utils.flops.count_training_macs` counts every backward
operation on meta rather than assuming twice the forward). With ``plot``,
``train`` makes the token sweep time and count training steps too.

``profile`` prints, for each backbone setting, a torch.profiler table of one
forward (or training step) per model (:mod:`stvit_mm.analysis.profiling`).
``runtime='onnxruntime'`` exports both backbones and times them in ONNX
Runtime instead (:mod:`stvit_mm.analysis.onnx_runtime`).
``plot`` adds the token sweep (:mod:`stvit_mm.analysis.plot`),
``end_to_end`` the whole models (:mod:`stvit_mm.analysis.end_to_end`),
``classifier`` the ImageNet classifiers against mmpretrain's Swin
(:mod:`stvit_mm.analysis.classifier`).

Run time (2 idle cores, 2 threads; Swin-S takes about 3 s per forward at
800x1216): the default run about 15-20 minutes (12 for timing, 4 for the
CPU memory subprocesses); the plot adds about 3 minutes; end to end with
default settings adds about 30-35 minutes (on the CPU the Cascade heads, 3
stages on 1000 proposals plus 3 mask heads on 100 detections, cost about
10 s per image whatever the backbone), with batch size 1 and 3 repeats
about 10. The classifiers with default settings (S and B at 224x224, batch
sizes 1 and 32) add about 4-5 minutes, estimated from the backbone rows'
times (about 2 of them the CPU memory subprocesses), almost all of it at
batch 32.
"""
from functools import partial

import torch

from stvit_mm.utils.flops import count_macs, count_training_macs

from .classifier import CLASSIFIER_NOTE, classifier_table
from .end_to_end import end_to_end_table
from .options import BenchmarkSettings
from .pairs import (backbone_pairs, common_cells, common_headers, macs_ratio,
                    measure_settings)
from .plot import sweep_table, token_sweep, write_plot
from .tables import markdown_table

__all__ = ['backbone_table', 'describe', 'run_benchmark']

#: The FLOPs column of a table of training steps.
TRAIN_FLOPS_HEADER = 'FLOPs (fwd+bwd) STViT-R / Swin'


def backbone_table(settings: BenchmarkSettings) -> str:
    """Backbone latency / memory of every selected setting.

    Args:
        settings (BenchmarkSettings): What to measure.

    Returns:
        str: The markdown table (first column: the model size, or
        ``'custom'`` for ``backbone_configs``).
    """
    rows = []
    flops_ratio = partial(
        macs_ratio, count_training_macs if settings.train else count_macs)
    for key, subjects in backbone_pairs(settings):
        for setting in measure_settings(subjects, settings.sizes,
                                        flops_ratio, settings):
            rows.append([key] + common_cells(*setting))
    headers = (common_headers(TRAIN_FLOPS_HEADER) if settings.train else
               common_headers())
    return markdown_table(['Model'] + headers, rows)


def describe(settings: BenchmarkSettings) -> str:
    """The ``Setting:`` line: torch, threads, repeats, what is timed and
    how memory is measured (and the GPU, with CUDA)."""
    unit = 'training step' if settings.train else 'forward'
    mem = ('off' if settings.no_memory else
           f'CPU: peak-RSS rise of one {unit} in a fresh subprocess; '
           'CUDA: max_memory_allocated rise; both above weights + input')
    what = ('training steps (backbones: forward + backward of the sum of '
            'the outputs, train mode, no optimizer step)' if settings.train
            else 'forwards')
    cuda = ''
    if 'cuda' in settings.devices:
        cuda = (f'; {torch.cuda.get_device_name()}, TF32 matmul '
                f'{torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 '
                f'{torch.backends.cudnn.allow_tf32}')
    return (f'torch {torch.__version__}, {settings.threads} CPU threads, '
            f'{settings.warmup} warm-up + median of {settings.repeat} '
            f'interleaved {what}; memory: {mem}{cuda}.')


def run_benchmark(settings: BenchmarkSettings) -> None:
    """Print the selected tables as they are measured (and write the plot).

    Sets torch's CPU thread count to ``settings.threads``; progress goes to
    stderr.

    Args:
        settings (BenchmarkSettings): What to measure.

    Raises:
        ConfigError: A config is missing or cannot be used.
    """
    torch.set_num_threads(settings.threads)
    print(f'Setting: {describe(settings)}\n')
    if settings.runtime == 'onnxruntime':
        from .onnx_runtime import onnx_backbone_table
        print('## Backbones in ONNX Runtime (CPU)\n')
        print(onnx_backbone_table(settings), end='\n\n', flush=True)
    elif not settings.no_backbone:
        print('## Backbones, training step (forward + backward)\n'
              if settings.train else '## Backbones\n')
        print(backbone_table(settings), end='\n\n', flush=True)
    if settings.plot:
        results = token_sweep(settings)
        write_plot(results, settings.plot)
        print('## Semantic tokens per window, training step\n'
              if settings.train else '## Semantic tokens per window\n')
        print(sweep_table(results))
        print(f'\nplot written to {settings.plot}\n', flush=True)
    if settings.end_to_end:
        print('## End to end (model.test_step, random weights)\n')
        print(end_to_end_table(settings), end='\n\n')
        print('Detector score threshold set to 0 (random weights), so each '
              'image yields max_per_img detections for the mask heads. '
              'Model FLOPs: see tools/analysis/get_flops.py --whole-model.\n')
    if settings.classifier:
        print("## ImageNet classifiers (model(inputs, mode='tensor'), random "
              'weights)\n')
        print(classifier_table(settings), end='\n\n')
        print(CLASSIFIER_NOTE)
