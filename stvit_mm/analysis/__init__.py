"""What the analysis tools do, as functions (``tools/analysis/``).

One concern per module:

* :mod:`~.models`: the project's Swin / STViT-R pairs, backbones and whole
  models built from configs, and their inputs;
* :mod:`~.flops`: FLOPs and parameters, the paper's FLOPs table
  (``get_flops.py``, :func:`flops_report`);
* :mod:`~.timing`, :mod:`~.memory` (with the CPU probe :mod:`~.probe`, run
  as ``python -m stvit_mm.analysis.probe``), :mod:`~.profiling`: measuring
  one forward or training step;
* :mod:`~.pairs`, :mod:`~.plot`, :mod:`~.end_to_end`, :mod:`~.classifier`,
  :mod:`~.benchmark`: the speed and memory comparison (``benchmark.py``,
  :func:`run_benchmark`);
* :mod:`~.device_check`, :mod:`~.device_report`: correctness on an
  accelerator against the CPU (``device_check.py``, :func:`check_config`);
* :mod:`~.options`: the settings the tools' command lines fill;
  :mod:`~.tables`: markdown tables and number formats.

Importing this package imports neither mmdet's nor mmseg's models: they are
imported when a model is built.
"""
from .benchmark import run_benchmark
from .device_report import check_config
from .flops import count_macs, count_whole_model, flops_report
from .models import (PAIR_CONFIGS, Subject, build_backbone, build_model,
                     build_subject, num_params)
from .options import BenchmarkSettings, FlopsSettings, parse_settings, size_arg

__all__ = [
    'BenchmarkSettings', 'FlopsSettings', 'PAIR_CONFIGS', 'Subject',
    'build_backbone', 'build_model', 'build_subject', 'check_config',
    'count_macs', 'count_whole_model', 'flops_report', 'num_params',
    'parse_settings', 'run_benchmark', 'size_arg'
]
