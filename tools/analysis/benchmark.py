"""Latency and peak memory of STViT-R-Swin against mmdet's Swin.

The backbones come from the project's COCO configs (``model.backbone`` of
``configs/cascade_{swin,stvit_r_swin}_{s,b}_3x.py``, ``init_cfg=None``;
drop-path rates do not matter in eval mode, so the ADE20K configs' backbones
run the same computation). Both models of a pair live in ONE process and are
timed interleaved (Swin, STViT-R, Swin, STViT-R, ...) after ``--warmup``
rounds; a row reports the median of ``--repeat`` forwards, the ratio
STViT-R / Swin, and beside it the FLOPs ratio from
:func:`stvit_mm.utils.flops.count_macs` at the same input.

Devices and precision:

* CPU: fp32, ``torch.set_num_threads(--threads)``.
* CUDA (only when ``torch.cuda.is_available()``): fp32, and fp16 / bf16
  under ``torch.autocast``; every timed forward is bracketed by
  ``torch.cuda.synchronize()``. (Written for, not run on, the CPU-only
  development machine.)

Peak memory (MiB) is the memory a forward needs ON TOP of the weights and
the input:

* CUDA: ``torch.cuda.max_memory_allocated()`` after
  ``reset_peak_memory_stats()``, minus ``memory_allocated()`` before the
  forward: the peak of live tensor bytes (workspaces of cuBLAS/cuDNN
  included, the caching allocator's unused reserve excluded).
* CPU: the rise of the process's peak resident set size during ONE forward,
  measured in a fresh subprocess that holds only that model and its input:
  ``VmHWM`` after the forward minus ``VmRSS`` before it, with ``VmHWM`` reset
  through ``/proc/self/clear_refs`` just before the forward (Linux; elsewhere
  ``ru_maxrss`` deltas, a lower bound). torch's CPU allocator keeps no
  statistics, tracemalloc does not see its allocations and the profiler's
  per-operator memory gives no peak, so the operating system's view is the
  honest one. The fresh process matters: in a process that already ran
  another model, glibc hands freed-but-kept heap memory to the next forward
  without the RSS rising, which would flatter whichever model runs second.
  The figure includes allocator overhead and first-call caches (e.g.
  STViT-R's per-size index tables), i.e. what a user's process sees. It
  costs one process start and one forward per row and model; ``--no-memory``
  skips it.

``--plot out.png`` times and counts STViT-R-Swin with s = 2, 3, 4 semantic
tokens per window side (4, 9, 16 tokens per window; ``sample_window_size``
is an inference-time setting of the same weights) against Swin, at
``--plot-size`` (default: the first of ``--sizes``), the first batch size,
fp32 on the first device, and draws time and GFLOPs against tokens per
window with Swin as a horizontal line.

``--train`` times training steps instead of inference in the backbone
table: forward and backward of the sum of the four outputs, models in train
mode (drop path as configured), fp16 / bf16 under autocast on CUDA. The
optimizer step is left out: it is one elementwise update per parameter, and
the two backbones have about the same parameter count. Peak memory is then
that of forward + backward (gradients included) above weights and input; on
the CPU it is measured by the same subprocess probe. The FLOPs column stays
the forward's ratio (backward costs about twice the forward for both).

``--profile ROWS`` prints, for each backbone setting, a torch.profiler table
of one forward (or training step) per model: the ROWS operators and kernels
with the most self CUDA time (self CPU time on the CPU).

``--backbone-configs``, ``--det-configs`` and ``--seg-configs`` compare any
other pair of configs (baseline first) instead of the project's S/B pairs.

``--end-to-end`` also times the whole models' inference (``model.test_step``
on uint8 images with DetDataSample / SegDataSample metainfo, i.e. data
preprocessing, backbone, neck, heads and post-processing): Cascade Mask
R-CNN (``configs/cascade_*_3x.py``, mmdet's Swin) at ``--det-sizes`` and
UperNet (``configs/upernet_*_ade20k.py``, mmseg's Swin) at
``--seg-sizes``. The weights are random, so the detector's final score
threshold is set to 0: every image then yields ``max_per_img`` (100)
detections and the mask heads do the work a trained model's do (the table
shows the detections per image). The FLOPs ratio of these rows is the whole
model's (see tools/analysis/get_flops.py for how two-stage detectors are
counted).

Run time (2 idle cores, 2 threads; Swin-S takes about 3 s per forward at
800x1216): the default run about 15-20 minutes (12 for timing, 4 for the
CPU memory subprocesses); ``--plot`` adds about 3 minutes;
``--end-to-end`` with default settings adds about 30-35 minutes (on the CPU
the Cascade heads, 3 stages on 1000 proposals plus 3 mask heads on 100
detections, cost about 10 s per image whatever the backbone), with
``--batch-sizes 1 --repeat 3`` about 10.

Examples::

    python tools/analysis/benchmark.py                       # full table
    python tools/analysis/benchmark.py --models S --sizes 512x512 \\
        --batch-sizes 1 --repeat 3                            # ~1 minute
    python tools/analysis/benchmark.py --sizes 800x1216 --batch-sizes 1 \\
        --no-memory --plot tokens.png
    python tools/analysis/benchmark.py --no-backbone --end-to-end \\
        --batch-sizes 1 --repeat 3
    python tools/analysis/benchmark.py --devices cuda --dtypes bf16 \\
        --sizes 800x1333 --batch-sizes 2 --train --repeat 20
"""
import argparse
import contextlib
import copy
import functools
import json
import os
import os.path as osp
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from typing import (Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from get_flops import (PAIR_CONFIGS, build_backbone, build_model,  # noqa
                       count_whole_model, load_config, markdown_table)

DEFAULT_SIZES = [(800, 1216), (800, 1333), (512, 512)]
DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
def size_arg(text: str) -> Tuple[int, int]:
    """Parse ``HxW`` (e.g. ``800x1216``)."""
    match = re.fullmatch(r'(\d+)[xX](\d+)', text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(
            f'expected HxW with positive integers, e.g. 800x1216, got '
            f'{text!r}')
    return int(match[1]), int(match[2])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Latency and peak memory of STViT-R-Swin vs Swin '
        'backbones (and, with --end-to-end, Cascade Mask R-CNN / UperNet), '
        'interleaved in one process, with the FLOPs ratio beside the time '
        'ratio. Default run: about 15-20 minutes on 2 idle CPU cores '
        '(2 model sizes x 3 input sizes x 2 batch sizes x 2 backbones x '
        '(1 warm-up + 5 timed) forwards, ~12 min, plus one subprocess '
        'forward per row and backbone for the CPU memory, ~4 min); '
        '--plot adds ~3 min, --end-to-end ~30-35 min (~10 with --batch-sizes '
        '1 --repeat 3). A quick look: --models S --sizes 512x512 '
        '--batch-sizes 1 --repeat 3 (~1 min).')
    parser.add_argument(
        '--models', nargs='+', choices=sorted(PAIR_CONFIGS),
        default=['S', 'B'], help='backbone sizes to compare (default: S B)')
    parser.add_argument(
        '--sizes', nargs='+', type=size_arg, default=DEFAULT_SIZES,
        metavar='HxW', help='backbone input sizes (default: 800x1216 '
        '800x1333 512x512, COCO test sizes and ADE20K)')
    parser.add_argument(
        '--batch-sizes', nargs='+', type=int, default=[1, 2],
        help='batch sizes (default: 1 2)')
    parser.add_argument(
        '--devices', nargs='+', choices=['cpu', 'cuda'], default=None,
        help='devices (default: cpu, plus cuda when available)')
    parser.add_argument(
        '--dtypes', nargs='+', choices=list(DTYPES),
        default=list(DTYPES), help='CUDA precisions, fp16/bf16 via '
        'autocast (default: all); the CPU always runs fp32')
    parser.add_argument(
        '--threads', type=int, default=2, help='CPU threads, '
        'torch.set_num_threads (default: 2)')
    parser.add_argument(
        '--repeat', type=int, default=5,
        help='timed forwards per model; the median is reported '
        '(default: 5)')
    parser.add_argument(
        '--warmup', type=int, default=1,
        help='untimed forwards per model before timing (default: 1)')
    parser.add_argument(
        '--no-memory', action='store_true',
        help='skip the peak-memory measurement (on CPU it costs a '
        'subprocess and a forward per row and model)')
    parser.add_argument(
        '--train', action='store_true',
        help='backbone table of training steps (forward + backward of the '
        'sum of the outputs, train mode) instead of inference')
    parser.add_argument(
        '--profile', type=int, metavar='ROWS',
        help='print a torch.profiler table (top ROWS by self CUDA time, '
        'self CPU time on the CPU) of each backbone setting')
    parser.add_argument(
        '--no-backbone', action='store_true',
        help='skip the backbone table (with --plot or --end-to-end)')
    parser.add_argument(
        '--plot', metavar='OUT.png',
        help='also time/count s = --sample-sizes and draw time and GFLOPs '
        'against semantic tokens per window into this PNG')
    parser.add_argument(
        '--plot-size', type=size_arg, metavar='HxW',
        help='input size of the plot (default: the first of --sizes)')
    parser.add_argument(
        '--sample-sizes', nargs='+', type=int, default=[2, 3, 4],
        help='s of the plot, s*s semantic tokens per window '
        '(default: 2 3 4)')
    parser.add_argument(
        '--end-to-end', action='store_true',
        help='also time Cascade Mask R-CNN and UperNet inference '
        '(model.test_step) with each backbone')
    parser.add_argument(
        '--tasks', nargs='+', choices=['det', 'seg'], default=['det', 'seg'],
        help='end-to-end models: det = Cascade Mask R-CNN (COCO configs), '
        'seg = UperNet (ADE20K configs) (default: both)')
    parser.add_argument(
        '--backbone-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help="compare these configs' model.backbone instead of those of "
        '--models (baseline first; the second must build an STViTRSwin for '
        '--plot)')
    parser.add_argument(
        '--det-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help='end-to-end detector pair to compare instead of the '
        'Cascade Mask R-CNN configs of --models (baseline first)')
    parser.add_argument(
        '--seg-configs', nargs=2, metavar=('SWIN_CFG', 'STVIT_CFG'),
        help='end-to-end segmentor pair to compare instead of the UperNet '
        'configs of --models (baseline first)')
    parser.add_argument(
        '--det-sizes', nargs='+', type=size_arg, default=[(800, 1333)],
        metavar='HxW', help='end-to-end detector image sizes (default: '
        '800x1333, the COCO test scale)')
    parser.add_argument(
        '--seg-sizes', nargs='+', type=size_arg, default=[(512, 512)],
        metavar='HxW', help='end-to-end segmentor image sizes (default: '
        '512x512)')
    # Internal: measure one CPU peak memory in this (fresh) process.
    parser.add_argument('--probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.devices is None:
        args.devices = ['cpu'] + (['cuda'] if torch.cuda.is_available()
                                  else [])
    if 'cuda' in args.devices and not torch.cuda.is_available():
        parser.error('--devices cuda: torch.cuda.is_available() is False')
    if min(args.batch_sizes) < 1 or args.repeat < 1 or args.warmup < 0 \
            or args.threads < 1:
        parser.error('--batch-sizes, --repeat and --threads must be >= 1, '
                     '--warmup >= 0')
    if min(args.sample_sizes) < 1:
        parser.error('--sample-sizes must be >= 1')
    if args.no_backbone and not (args.plot or args.end_to_end):
        parser.error('--no-backbone leaves nothing to do without --plot or '
                     '--end-to-end')
    if args.no_backbone and (args.train or args.profile):
        parser.error('--train and --profile apply to the backbone table')
    return args


# ---------------------------------------------------------------------------
# What is measured: a "subject" is a JSON-serialisable description of a
# model, so that a fresh subprocess can build exactly the same one.
# ---------------------------------------------------------------------------
def subject(task: str, config: str, sample_size: Optional[int] = None,
            name: str = '') -> Dict:
    """Describe a model to measure.

    Args:
        task (str): ``'backbone'`` (the config's ``model.backbone``),
            ``'det'`` or ``'seg'`` (the whole model).
        config (str): Config path.
        sample_size (int, optional): STViT-R's ``sample_window_size`` s.
        name (str): Display name.
    """
    return dict(task=task, config=config, sample_size=sample_size, name=name)


def build_subject(spec: Dict) -> torch.nn.Module:
    """Build a subject on the CPU in eval mode (random weights)."""
    cfg = load_config(spec['config'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if spec['task'] == 'backbone':
            model = build_backbone(cfg)
        else:
            model_cfg = copy.deepcopy(cfg.model)
            rcnn = model_cfg.get('test_cfg', {}).get('rcnn')
            if spec['task'] == 'det' and rcnn is not None:
                # Random weights score every class ~1/81: without this the
                # score threshold leaves no detection for the mask heads.
                rcnn['score_thr'] = 0.0
            model = build_model(cfg, model_cfg)
    if spec['sample_size'] is not None:
        backbone = model if spec['task'] == 'backbone' else model.backbone
        backbone.sample_window_size = spec['sample_size']
    return model


def make_batch(task: str, batch: int, size: Tuple[int, int],
               device: str):
    """Inputs of one forward.

    Returns:
        Tensor or dict: A float image batch for a backbone; for a whole
        model, the ``test_step`` data: uint8 images and data samples with
        the metainfo a test pipeline writes.
    """
    h, w = size
    gen = torch.Generator().manual_seed(0)
    if task == 'backbone':
        return torch.randn(batch, 3, h, w, generator=gen).to(device)
    if task == 'det':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    inputs, samples = [], []
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen,
                                    dtype=torch.uint8))
        samples.append(Sample(metainfo=dict(
            img_id=i, img_path=f'random_{i}.jpg', ori_shape=(h, w),
            img_shape=(h, w), scale_factor=(1.0, 1.0), flip=False,
            flip_direction=None)))
    return dict(inputs=inputs, data_samples=samples)


def make_runner(model: torch.nn.Module, task: str, data,
                device: str, dtype: str,
                train: bool = False) -> Callable[[], object]:
    """A no-argument callable running one inference forward or, with
    ``train`` (backbones), forward + backward of the sum of the outputs
    (the gradients are dropped again at its end)."""

    def run():
        autocast = (torch.autocast(device_type=device, dtype=DTYPES[dtype])
                    if DTYPES[dtype] is not None else
                    contextlib.nullcontext())
        with torch.set_grad_enabled(train), autocast:
            if task != 'backbone':
                return model.test_step(data)
            outs = model(data)
        if train:
            sum(o.float().sum() for o in outs).backward()
            model.zero_grad(set_to_none=True)
            return None
        return outs

    return run


def profile_table(run: Callable, device: str, rows: int) -> str:
    """torch.profiler table of one ``run()``: the ``rows`` entries with the
    most self CUDA time (self CPU time on the CPU)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if cuda else [])
    with profile(activities=activities) as prof:
        run()
        synchronizer(device)()
    key = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=key, row_limit=rows,
                                     max_name_column_width=70)


def synchronizer(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == 'cuda' else (lambda: None)


def time_interleaved(runners: Sequence[Callable], warmup: int, repeat: int,
                     sync: Callable[[], None]) -> Tuple[List[float], list]:
    """Run the runners in turn (A, B, A, B, ...), so that slow drifts of the
    machine hit all of them alike.

    Returns:
        tuple: The median seconds per forward of each runner, and each
        runner's last output.
    """
    for _ in range(warmup):
        for run in runners:
            run()
            sync()
    times = [[] for _ in runners]
    outputs = [None] * len(runners)
    for _ in range(repeat):
        for i, run in enumerate(runners):
            sync()
            start = time.perf_counter()
            outputs[i] = run()
            sync()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], outputs


# ---------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------
def cuda_peak_mib(run: Callable) -> float:
    """Peak CUDA tensor memory of one forward above what was allocated
    before it (weights, input), in MiB."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _proc_status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        match = re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M)
    return int(match[1])


def rss_peak_mib(run: Callable) -> Tuple[float, str]:
    """Rise of this process's peak RSS during ``run()``, in MiB.

    Returns:
        tuple: (MiB, method): ``'VmHWM'`` where the high-water mark can be
        reset (Linux ``/proc/self/clear_refs``), else ``'ru_maxrss'`` (a
        delta of the lifetime peak: a lower bound).
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
        before = _proc_status_kib('VmRSS')
        run()
        return (_proc_status_kib('VmHWM') - before) / 1024, 'VmHWM'
    except OSError:
        scale = 1 if sys.platform == 'darwin' else 1024  # bytes vs KiB
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (after - before) * scale / 2**20, 'ru_maxrss'


def probe_main(probe: str) -> int:
    """Subprocess entry: build one subject, run one forward, print its CPU
    peak memory as JSON on the last line."""
    job = json.loads(probe)
    torch.set_num_threads(job['threads'])
    spec = job['subject']
    model = build_subject(spec)
    train = bool(spec.get('train'))
    model.train(train)  # on its own line: mmdet's Swin.train() returns None
    data = make_batch(spec['task'], job['batch'], tuple(job['size']), 'cpu')
    run = make_runner(model, spec['task'], data, 'cpu', 'fp32', train)
    # Start the thread pool outside the measurement.
    with torch.no_grad():
        torch.nn.functional.conv2d(torch.ones(1, 8, 16, 16),
                                   torch.ones(8, 8, 3, 3)).sum()
    mib, method = rss_peak_mib(run)
    print(json.dumps(dict(mib=mib, method=method)))
    return 0


def cpu_peak_mib(spec: Dict, batch: int, size: Tuple[int, int],
                 threads: int) -> Optional[float]:
    """CPU peak memory of one forward of ``spec``, measured in a fresh
    subprocess (see the module docstring). None if the probe failed."""
    job = dict(subject=spec, batch=batch, size=list(size), threads=threads)
    cmd = [sys.executable, osp.abspath(__file__), '--probe', json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f'warning: memory probe of {spec["name"]} failed:\n'
              f'{proc.stderr[-2000:]}', file=sys.stderr)
        return None
    return json.loads(lines[-1])['mib']


def peak_mib(spec: Dict, run: Callable, device: str, batch: int,
             size: Tuple[int, int], threads: int) -> Optional[float]:
    if device == 'cuda':
        return cuda_peak_mib(run)
    return cpu_peak_mib(spec, batch, size, threads)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
def _ms(seconds: Optional[float]) -> str:
    """Milliseconds: integers from 100 ms, three significant digits below."""
    if seconds is None:
        return '-'
    ms = seconds * 1e3
    return f'{ms:.0f}' if ms >= 100 else f'{ms:.3g}'


def _gflops(g: float) -> str:
    return f'{g:.1f}' if g >= 10 else f'{g:.3g}'


def _mib(mib: Optional[float]) -> str:
    return '-' if mib is None else f'{mib:.0f}'


def _ratio(num: Optional[float], den: Optional[float]) -> str:
    if num is None or den is None or den <= 0:
        return '-'
    return f'{num / den:.2f}'


def precisions(device: str, dtypes: Sequence[str]) -> List[str]:
    return dtypes if device == 'cuda' else ['fp32']


def compare_pair(specs: Sequence[Dict], models: Sequence[torch.nn.Module],
                 size: Tuple[int, int], batch: int, device: str, dtype: str,
                 args) -> Dict:
    """Time (interleaved) and measure the memory of a Swin / STViT-R pair
    at one setting.

    Returns:
        dict: ``times`` (s), ``mems`` (MiB or None) and ``outputs`` (the
        last outputs, for detection counts), each in pair order.
    """
    task = specs[0]['task']
    train = args.train and task == 'backbone'
    data = make_batch(task, batch, size, device)
    runners = [make_runner(m, task, data, device, dtype, train)
               for m in models]
    for m in models:
        m.train(train)  # mmdet's Swin.train() returns None: no chaining
    try:
        times, outputs = time_interleaved(runners, args.warmup, args.repeat,
                                          synchronizer(device))
        mems = [None, None]
        if not args.no_memory:
            mems = [peak_mib(dict(spec, train=train), run, device, batch,
                             size, args.threads)
                    for spec, run in zip(specs, runners)]
        if args.profile and task == 'backbone':
            for spec, run in zip(specs, runners):
                print(f'### Profile: {spec["name"]}, {device} {dtype} '
                      f'{size[0]}x{size[1]} x{batch}'
                      f'{", training step" if train else ""}\n\n```\n'
                      f'{profile_table(run, device, args.profile)}\n```\n',
                      flush=True)
    finally:
        for m in models:
            m.eval()
    return dict(times=times, mems=mems,
                outputs=outputs if task == 'det' else None)


def pair_specs(task: str, size_key: str) -> List[Dict]:
    """Swin and STViT-R subjects of one backbone size."""
    configs = PAIR_CONFIGS[size_key]['ade' if task == 'seg' else 'coco']
    return [subject(task, cfg, name=f'{name}-{size_key}')
            for cfg, name in zip(configs, ('Swin', 'STViT-R-Swin'))]


def _on_device(models, device):
    """The models themselves on the CPU, copies on another device (the CPU
    models stay for FLOPs counting and later CPU settings)."""
    if device == 'cpu':
        return list(models)
    return [copy.deepcopy(m).to(device) for m in models]


def measure_settings(specs: Sequence[Dict], sizes: Sequence[Tuple[int, int]],
                     flops_ratio: Callable, args) -> Iterator[Tuple]:
    """Build a Swin / STViT-R pair once and measure it at every selected
    device, precision, size and batch size.

    Args:
        specs (Sequence[dict]): The pair's subjects, baseline first.
        sizes (Sequence[tuple]): (H, W) inputs.
        flops_ratio (Callable): ``(cpu_models, size, batch) -> str``.
        args (argparse.Namespace): The options.

    Yields:
        tuple: ``(device, dtype, size, batch, flops ratio, result of
        compare_pair)``.
    """
    cpu_models = [build_subject(s) for s in specs]
    flops = {}
    for device in args.devices:
        models = _on_device(cpu_models, device)
        for dtype in precisions(device, args.dtypes):
            for size in sizes:
                for batch in args.batch_sizes:
                    if (size, batch) not in flops:
                        flops[size, batch] = flops_ratio(cpu_models, size,
                                                         batch)
                    res = compare_pair(specs, models, size, batch, device,
                                       dtype, args)
                    print(f'  done: {specs[1]["name"]} {device} {dtype} '
                          f'{size[0]}x{size[1]} x{batch}', file=sys.stderr,
                          flush=True)
                    yield device, dtype, size, batch, flops[size, batch], res


def _common_cells(device, dtype, size, batch, flops, res) -> List:
    t, mem = res['times'], res['mems']
    return [device, dtype, f'{size[0]}x{size[1]}', batch, _ms(t[0]),
            _ms(t[1]), _ratio(t[1], t[0]), flops, _mib(mem[0]),
            _mib(mem[1]), _ratio(mem[1], mem[0])]


COMMON_HEADERS = ['Device', 'Precision', 'Input', 'Batch', 'Swin (ms)',
                  'STViT-R (ms)', 'Time STViT-R / Swin',
                  'FLOPs STViT-R / Swin', 'Swin peak (MiB)',
                  'STViT-R peak (MiB)', 'Memory STViT-R / Swin']


def _backbone_flops_ratio(models, size, batch) -> str:
    from stvit_mm.utils.flops import count_macs
    macs = [count_macs(m, (batch, 3, *size)) for m in models]
    return _ratio(macs[1], macs[0])


def backbone_table(args) -> str:
    """Backbone latency / memory of every selected setting."""
    rows = []
    for key, specs in backbone_pairs(args):
        for setting in measure_settings(specs, args.sizes,
                                        _backbone_flops_ratio, args):
            rows.append([key] + _common_cells(*setting))
    return markdown_table(['Model'] + COMMON_HEADERS, rows)


def backbone_pairs(args) -> List[Tuple[str, List[Dict]]]:
    """(model label, [Swin spec, STViT-R spec]) per --models size, or the
    pair of --backbone-configs."""
    if args.backbone_configs:
        return [('custom', [subject('backbone', cfg, name=osp.basename(cfg))
                            for cfg in args.backbone_configs])]
    return [(key, pair_specs('backbone', key)) for key in args.models]


def _detections(outputs) -> str:
    """Mean detections per image of each model's last output."""
    if outputs is None:
        return ''
    counts = []
    for samples in outputs:
        per_image = [len(s.pred_instances) for s in samples]
        counts.append(f'{sum(per_image) / len(per_image):.0f}')
    return ' / '.join(counts)


def end_to_end_table(args) -> str:
    """Whole-model inference latency / memory of every selected setting."""
    rows = []
    for task, key, specs in end_to_end_pairs(args):
        sizes = args.det_sizes if task == 'det' else args.seg_sizes
        label = ('Cascade Mask R-CNN' if task == 'det' else 'UperNet') \
            if key != 'custom' else task
        ratio = functools.partial(_model_flops_ratio, task=task)
        for setting in measure_settings(specs, sizes, ratio, args):
            rows.append([key, label] + _common_cells(*setting) +
                        [_detections(setting[-1]['outputs'])])
    headers = ['Model', 'Task'] + COMMON_HEADERS + ['Detections / image']
    headers[headers.index('FLOPs STViT-R / Swin')] = \
        'Model FLOPs STViT-R / Swin'
    return markdown_table(headers, rows)


def end_to_end_pairs(args) -> List[Tuple[str, str, List[Dict]]]:
    """(task, model label, [Swin spec, STViT-R spec]) of every end-to-end
    comparison: the project's configs per --models size, or the pair of
    --det-configs / --seg-configs."""
    pairs = []
    for task in args.tasks:
        override = args.det_configs if task == 'det' else args.seg_configs
        if override:
            pairs.append((task, 'custom', [
                subject(task, cfg, name=osp.basename(cfg))
                for cfg in override]))
        else:
            pairs += [(task, key, pair_specs(task, key))
                      for key in args.models]
    return pairs


def _model_flops_ratio(models, size: Tuple[int, int], batch: int,
                       task: str) -> str:
    """Whole-model MACs ratio at the input the network sees (after the data
    preprocessor's padding)."""
    data = make_batch(task, batch, size, 'cpu')
    with torch.no_grad():
        shape = tuple(models[0].data_preprocessor(data, False)['inputs'].shape)
    macs = [count_whole_model(m, shape) for m in models]
    return _ratio(macs[1], macs[0])


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------
def token_sweep(args) -> List[Dict]:
    """Time and MACs of Swin and of STViT-R at each s of --sample-sizes.

    Returns:
        list[dict]: Per model size: ``model``, ``tokens`` (s*s),
        ``times`` (s) and ``gflops`` of STViT-R per s, ``swin_time`` and
        ``swin_gflops``.
    """
    from stvit_mm.utils.flops import count_macs
    size = args.plot_size or args.sizes[0]
    batch, device = args.batch_sizes[0], args.devices[0]
    results = []
    for key, (swin_spec, stvit_spec) in backbone_pairs(args):
        swin = build_subject(swin_spec)
        stvit = build_subject(stvit_spec)
        models = [swin]
        if not isinstance(getattr(type(stvit), 'sample_window_size', None),
                          property):
            raise ValueError(f'{stvit_spec["config"]}: its backbone '
                             f'{type(stvit).__name__} has no '
                             'sample_window_size to sweep')
        for s in args.sample_sizes:
            model = copy.deepcopy(stvit)
            model.sample_window_size = s
            models.append(model)
        macs = [count_macs(m, (batch, 3, *size)) / 1e9 for m in models]
        models = _on_device(models, device)
        data = make_batch('backbone', batch, size, device)
        runners = [make_runner(m, 'backbone', data, device, 'fp32')
                   for m in models]
        times, _ = time_interleaved(runners, args.warmup, args.repeat,
                                    synchronizer(device))
        results.append(dict(
            model=key, size=size, batch=batch, device=device,
            tokens=[s * s for s in args.sample_sizes], times=times[1:],
            gflops=macs[1:], swin_time=times[0], swin_gflops=macs[0]))
        print(f'  done: token sweep {key}', file=sys.stderr, flush=True)
    return results


def _label(family: str, key: str) -> str:
    """'Swin-S', or 'Swin (custom)' for --backbone-configs."""
    return f'{family} ({key})' if key == 'custom' else f'{family}-{key}'


def sweep_table(results: List[Dict]) -> str:
    headers = ['Model', 'Input', 'Batch', 'Device', 'Tokens / window',
               'Time (ms)', 'GFLOPs', 'Time / Swin', 'FLOPs / Swin']
    rows = []
    for r in results:
        size = f'{r["size"][0]}x{r["size"][1]}'
        rows.append([_label('Swin', r['model']), size, r['batch'], r['device'],
                     '49 (all)', _ms(r['swin_time']),
                     _gflops(r['swin_gflops']), '1.00', '1.00'])
        for tokens, t, g in zip(r['tokens'], r['times'], r['gflops']):
            rows.append([_label('STViT-R-Swin', r['model']), size, r['batch'],
                         r['device'], tokens, _ms(t), _gflops(g),
                         _ratio(t, r['swin_time']),
                         _ratio(g, r['swin_gflops'])])
    return markdown_table(headers, rows)


def write_plot(results: List[Dict], out_file: str) -> None:
    """Time and GFLOPs against semantic tokens per window, Swin as
    horizontal reference lines; a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    tops = [0.0, 0.0]
    for i, r in enumerate(results):
        color = f'C{i}'
        for j, (ys, ref) in enumerate(
                (([t * 1e3 for t in r['times']], r['swin_time'] * 1e3),
                 (r['gflops'], r['swin_gflops']))):
            axes[j].plot(r['tokens'], ys, 'o-', color=color,
                         label=_label('STViT-R-Swin', r['model']))
            axes[j].axhline(ref, color=color, linestyle='--',
                            label=_label('Swin', r['model']))
            tops[j] = max(tops[j], ref, *ys)
    r = results[0]
    setting = (f'{r["size"][0]}x{r["size"][1]}, batch {r["batch"]}, '
               f'{r["device"]} fp32')
    for ax, top, label in ((axes[0], tops[0], 'backbone time (ms)'),
                           (axes[1], tops[1], 'backbone GFLOPs (MACs)')):
        ax.set_xlabel('semantic tokens per window (s x s)')
        ax.set_ylabel(label)
        ax.set_xticks(r['tokens'])
        ax.set_ylim(0, top * 1.3)  # room for the legend
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f'STViT-R-Swin vs Swin, {setting}')
    fig.tight_layout()
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------
def describe(args) -> str:
    unit = 'training step' if args.train else 'forward'
    mem = ('off' if args.no_memory else
           f'CPU: peak-RSS rise of one {unit} in a fresh subprocess; '
           'CUDA: max_memory_allocated rise; both above weights + input')
    what = ('training steps (backbones: forward + backward of the sum of '
            'the outputs, train mode, no optimizer step)' if args.train
            else 'forwards')
    cuda = ''
    if 'cuda' in args.devices:
        cuda = (f'; {torch.cuda.get_device_name()}, TF32 matmul '
                f'{torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 '
                f'{torch.backends.cudnn.allow_tf32}')
    return (f'torch {torch.__version__}, {args.threads} CPU threads, '
            f'{args.warmup} warm-up + median of {args.repeat} interleaved '
            f'{what}; memory: {mem}{cuda}.')


def run_all(args) -> None:
    """Print the selected tables (and write the plot)."""
    print(f'Setting: {describe(args)}\n')
    if not args.no_backbone:
        print('## Backbones, training step (forward + backward)\n'
              if args.train else '## Backbones\n')
        print(backbone_table(args), end='\n\n', flush=True)
    if args.plot:
        results = token_sweep(args)
        write_plot(results, args.plot)
        print('## Semantic tokens per window\n')
        print(sweep_table(results))
        print(f'\nplot written to {args.plot}\n', flush=True)
    if args.end_to_end:
        print('## End to end (model.test_step, random weights)\n')
        print(end_to_end_table(args), end='\n\n')
        print('Detector score threshold set to 0 (random weights), so each '
              'image yields max_per_img detections for the mask heads. '
              'Model FLOPs: see tools/analysis/get_flops.py --whole-model.')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.probe:
        return probe_main(args.probe)
    torch.set_num_threads(args.threads)
    try:
        run_all(args)
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
