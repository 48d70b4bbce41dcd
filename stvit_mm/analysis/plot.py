"""Semantic tokens per window: time and GFLOPs of STViT-R-Swin against s.

STViT-R-Swin is timed and counted with s = 2, 3, 4 semantic tokens per
window side (4, 9, 16 tokens per window; ``sample_window_size`` is an
inference-time setting of the same weights) against Swin, at one input
size, batch size and device (fp32), and drawn as time and GFLOPs against
tokens per window with Swin as a horizontal line. With ``train`` the sweep
times training steps (forward + backward, train mode) and counts their
forward + backward MACs, to show what the dial would cost in training.
"""
import copy
import os
import os.path as osp
import sys
from typing import Dict, List

from stvit_mm.errors import ConfigError
from stvit_mm.utils.flops import count_macs, count_training_macs

from .models import build_subject, make_batch
from .options import BenchmarkSettings
from .pairs import backbone_pairs, on_device
from .tables import format_gflops, format_ms, format_ratio, markdown_table
from .timing import make_runner, synchronizer, time_interleaved

__all__ = ['sweep_table', 'token_sweep', 'write_plot']


def token_sweep(settings: BenchmarkSettings) -> List[Dict]:
    """Time and MACs of Swin and of STViT-R at each s of
    ``settings.sample_sizes``, at ``settings.plot_size`` (default: the
    first of ``sizes``), the first batch size, fp32 on the first device.

    Returns:
        list[dict]: Per model size: ``model``, ``size``, ``batch``,
        ``device``, ``train``, ``tokens`` (s*s), ``times`` (s) and
        ``gflops`` of STViT-R per s, ``swin_time`` and ``swin_gflops``.

    Raises:
        ConfigError: If the second backbone has no ``sample_window_size``.
    """
    size = settings.plot_size or settings.sizes[0]
    batch, device = settings.batch_sizes[0], settings.devices[0]
    results = []
    for key, (swin_subject, stvit_subject) in backbone_pairs(settings):
        swin = build_subject(swin_subject)
        stvit = build_subject(stvit_subject)
        models = [swin]
        if not isinstance(getattr(type(stvit), 'sample_window_size', None),
                          property):
            raise ConfigError(f'{stvit_subject.config}: its backbone '
                              f'{type(stvit).__name__} has no '
                              'sample_window_size to sweep')
        for s in settings.sample_sizes:
            model = copy.deepcopy(stvit)
            model.sample_window_size = s
            models.append(model)
        count = count_training_macs if settings.train else count_macs
        macs = [count(m, (batch, 3, *size)) / 1e9 for m in models]
        models = on_device(models, device)
        data = make_batch('backbone', batch, size, device)
        runners = [make_runner(m, 'backbone', data, device, 'fp32',
                               settings.train) for m in models]
        for m in models:
            m.train(settings.train)  # own line: mmdet's Swin returns None
        try:
            times, _ = time_interleaved(runners, settings.warmup,
                                        settings.repeat,
                                        synchronizer(device))
        finally:
            for m in models:
                m.eval()
        results.append(dict(
            model=key, size=size, batch=batch, device=device,
            train=settings.train,
            tokens=[s * s for s in settings.sample_sizes], times=times[1:],
            gflops=macs[1:], swin_time=times[0], swin_gflops=macs[0]))
        print(f'  done: token sweep {key}', file=sys.stderr, flush=True)
    return results


def _label(family: str, key: str) -> str:
    """'Swin-S', or 'Swin (custom)' for --backbone-configs."""
    return f'{family} ({key})' if key == 'custom' else f'{family}-{key}'


def sweep_table(results: List[Dict]) -> str:
    """The :func:`token_sweep` results as a markdown table."""
    headers = ['Model', 'Input', 'Batch', 'Device', 'Tokens / window',
               'Time (ms)', 'GFLOPs', 'Time / Swin', 'FLOPs / Swin']
    rows = []
    for r in results:
        size = f'{r["size"][0]}x{r["size"][1]}'
        rows.append([_label('Swin', r['model']), size, r['batch'], r['device'],
                     '49 (all)', format_ms(r['swin_time']),
                     format_gflops(r['swin_gflops']), '1.00', '1.00'])
        for tokens, t, g in zip(r['tokens'], r['times'], r['gflops']):
            rows.append([_label('STViT-R-Swin', r['model']), size, r['batch'],
                         r['device'], tokens, format_ms(t), format_gflops(g),
                         format_ratio(t, r['swin_time']),
                         format_ratio(g, r['swin_gflops'])])
    return markdown_table(headers, rows)


def write_plot(results: List[Dict], out_file: str) -> None:
    """Draw time and GFLOPs against semantic tokens per window, Swin as
    horizontal reference lines, into the PNG ``out_file`` (its folder is
    created)."""
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
               f'{r["device"]} fp32'
               f'{", training step (fwd + bwd)" if r.get("train") else ""}')
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
