"""Latency and peak memory of STViT-R-Swin against mmdet's Swin.

Both backbones of a pair run interleaved in one process; each row gives the
median times, the ratio STViT-R / Swin beside the FLOPs ratio, and the peak
memory above weights and input (CPU: a fresh subprocess per model).
``--classifier`` adds the ImageNet classifiers against mmpretrain's Swin,
timed whole (``model(inputs, mode='tensor')``). See
:mod:`stvit_mm.analysis.benchmark` for what is measured and how long it
takes.

Examples::

    python tools/analysis/benchmark.py                       # full table
    python tools/analysis/benchmark.py --models S --sizes 512x512 \\
        --batch-sizes 1 --repeat 3                            # ~1 minute
    python tools/analysis/benchmark.py --sizes 800x1216 --batch-sizes 1 \\
        --no-memory --plot tokens.png
    python tools/analysis/benchmark.py --no-backbone --end-to-end \\
        --batch-sizes 1 --repeat 3
    python tools/analysis/benchmark.py --no-backbone --classifier \\
        --models S                                            # ~2 minutes
    python tools/analysis/benchmark.py --devices cuda --dtypes bf16 \\
        --sizes 800x1333 --batch-sizes 2 --train --repeat 20
"""
import argparse
import os.path as osp

from stvit_mm.analysis import (PAIR_CONFIGS, BenchmarkSettings, parse_settings,
                               run_benchmark, size_arg)
from stvit_mm.analysis.timing import DTYPES
from stvit_mm.errors import exit_on_error


def parse_args(argv=None) -> BenchmarkSettings:
    parser = argparse.ArgumentParser(
        argument_default=argparse.SUPPRESS,  # defaults: BenchmarkSettings
        description='Latency and peak memory of STViT-R-Swin vs Swin '
        'backbones (and, with --end-to-end, Cascade Mask R-CNN / UperNet), '
        'interleaved in one process, with the FLOPs ratio beside the time '
        'ratio. Default run: about 15-20 minutes on 2 idle CPU cores '
        '(2 model sizes x 3 input sizes x 2 batch sizes x 2 backbones x '
        '(1 warm-up + 5 timed) forwards, ~12 min, plus one subprocess '
        'forward per row and backbone for the CPU memory, ~4 min); '
        '--plot adds ~3 min, --end-to-end ~30-35 min (~10 with --batch-sizes '
        '1 --repeat 3), --classifier ~4-5 min (estimated, mostly batch 32). '
        'A quick look: --models S --sizes 512x512 --batch-sizes 1 --repeat 3 '
        '(~1 min).')
    add = parser.add_argument
    add('--models', nargs='+', choices=sorted(PAIR_CONFIGS),
        help='backbone sizes to compare (default: S B)')
    add('--sizes', nargs='+', type=size_arg, metavar='HxW',
        help='backbone input sizes (default: 800x1216 800x1333 512x512, '
        'COCO test sizes and ADE20K)')
    add('--batch-sizes', nargs='+', type=int,
        help='batch sizes (default: 1 2)')
    add('--devices', nargs='+', choices=['cpu', 'cuda'],
        help='devices (default: cpu, plus cuda when available)')
    add('--dtypes', nargs='+', choices=list(DTYPES),
        help='CUDA precisions, fp16/bf16 via autocast (default: all); the '
        'CPU always runs fp32')
    add('--threads', type=int,
        help='CPU threads, torch.set_num_threads (default: 2)')
    add('--repeat', type=int, help='timed forwards per model; the median '
        'is reported (default: 5)')
    add('--warmup', type=int,
        help='untimed forwards per model before timing (default: 1)')
    add('--no-memory', action='store_true',
        help='skip the peak-memory measurement (on CPU it costs a '
        'subprocess and a forward per row and model)')
    add('--train', action='store_true',
        help='time training steps instead of inference, in the backbone '
        'table and the --plot sweep: forward + backward of the sum of the '
        'outputs, train mode; the optimizer step is left out (one update '
        'per parameter, the same for both). Peak memory and FLOPs '
        '(forward + backward, measured) follow')
    add('--profile', type=int, metavar='ROWS',
        help='print a torch.profiler table (top ROWS by self CUDA time, '
        'self CPU time on the CPU) of each backbone setting')
    add('--no-backbone', action='store_true',
        help='skip the backbone table (with --plot or --end-to-end)')
    add('--runtime', choices=['pytorch', 'onnxruntime'],
        help='pytorch (default), or onnxruntime: export both backbones '
        'with tools/deployment/pytorch2onnx.py\'s exporter and time them '
        'in ONNX Runtime on the CPU (+1.5-2 min export per backbone)')
    add('--plot', metavar='OUT.png',
        help='also time/count s = --sample-sizes and draw time and GFLOPs '
        'against semantic tokens per window into this PNG')
    add('--plot-size', type=size_arg, metavar='HxW',
        help='input size of the plot (default: the first of --sizes)')
    add('--sample-sizes', nargs='+', type=int,
        help='s of the plot, s*s semantic tokens per window '
        '(default: 2 3 4)')
    add('--end-to-end', action='store_true',
        help='also time Cascade Mask R-CNN and UperNet inference '
        '(model.test_step) with each backbone')
    add('--tasks', nargs='+', choices=['det', 'seg'],
        help='end-to-end models: det = Cascade Mask R-CNN (COCO configs), '
        'seg = UperNet (ADE20K configs) (default: both)')
    add('--backbone-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help="compare these configs' model.backbone instead of those of "
        '--models (baseline first; the second must build an STViTRSwin for '
        '--plot)')
    add('--neighbourhood-impl', nargs='+', dest='neighbourhood_impls',
        metavar='IMPL',
        help="STViT-R's neighbourhood attention backends to time, one "
        'backbone row each against Swin: auto, strips, key_windows, gather '
        '(default: the config\'s, auto); see docs/attention_backends.md')
    add('--det-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help='end-to-end detector pair to compare instead of the '
        'Cascade Mask R-CNN configs of --models (baseline first)')
    add('--seg-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help='end-to-end segmentor pair to compare instead of the UperNet '
        'configs of --models (baseline first)')
    add('--det-sizes', nargs='+', type=size_arg, metavar='HxW',
        help='end-to-end detector image sizes (default: 800x1333, the COCO '
        'test scale)')
    add('--seg-sizes', nargs='+', type=size_arg, metavar='HxW',
        help='end-to-end segmentor image sizes (default: 512x512)')
    add('--classifier', action='store_true',
        help='also time the ImageNet classifiers of --models '
        '(configs/imagenet/stvit_r_swin_{s,b}_16xb64_in1k.py) against '
        "mmpretrain's Swin-S/B classifiers (swin-small/base_16xb64_in1k.py), "
        "whole: model(inputs, mode='tensor'), backbone + neck + head, "
        'inference; FLOPs ratio of the whole classifiers. About 4-5 min with '
        'the defaults on 2 idle CPU cores (estimated; ~2 min with --models S)')
    add('--cls-sizes', nargs='+', type=size_arg, metavar='HxW',
        help='classifier input sizes, sides of at least 193 px (default: '
        '224x224)')
    add('--cls-batch-sizes', nargs='+', type=int,
        help='classifier batch sizes (default: 1 32)')
    return parse_settings(parser, BenchmarkSettings, argv)


def main(argv=None) -> None:
    settings = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        run_benchmark(settings)


if __name__ == '__main__':
    main()
