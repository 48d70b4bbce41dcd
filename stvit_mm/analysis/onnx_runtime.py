"""The backbone table in ONNX Runtime (``benchmark.py --runtime
onnxruntime``).

Both backbones of a pair are exported by the same exporter as
``tools/deployment/pytorch2onnx.py --what backbone --static``, once per input
size and batch size (opset 18, onnxscript's optimizer; static because
mmdet's Swin does not finish a dynamic export, see
:mod:`stvit_mm.deployment.model_export`), loaded into ONNX Runtime CPU
sessions with ``settings.threads`` intra-op threads (ORT_ENABLE_ALL graph
optimisations, ONNX Runtime's default), and timed interleaved on the same
inputs, median of ``settings.repeat``. Each session's outputs are also
compared with the PyTorch backbone once per size (``ORT err``), so that the
speed is that of the same numbers. Memory is not measured here.

Exporting takes about 1-1.5 minutes per backbone and setting on two cores.
"""
import itertools
import os.path as osp
import sys
import tempfile
from typing import List

import torch

from stvit_mm.utils.flops import count_macs

from .models import build_subject
from .options import BenchmarkSettings
from .pairs import backbone_pairs
from .tables import format_ms, format_ratio, markdown_table
from .timing import time_interleaved

__all__ = ['ONNX_HEADERS', 'onnx_backbone_table']

ONNX_HEADERS = ['Model', 'Input', 'Batch', 'Swin (ms)', 'STViT-R (ms)',
                'Time STViT-R / Swin', 'FLOPs STViT-R / Swin',
                'ORT err (Swin, STViT-R)']


def _session_runner(session, image):
    array = image.numpy()
    return lambda: session(array)


def _max_error(session, model, image) -> float:
    from stvit_mm.deployment import relative_error
    with torch.no_grad():
        expected = model(image)
    actual = session(image)
    return max(relative_error(torch.from_numpy(a), e)
               for a, e in zip(actual, expected))


def onnx_backbone_table(settings: BenchmarkSettings) -> str:
    """Export each pair of ``settings.models`` per input size and batch size
    and time it in ONNX Runtime.

    Args:
        settings (BenchmarkSettings): Models, sizes, batch sizes, threads,
            warm-up and repeats (the CPU only).

    Returns:
        str: The markdown table (:data:`ONNX_HEADERS`).
    """
    from stvit_mm.deployment import OrtModel, export_backbone
    rows: List[list] = []
    with tempfile.TemporaryDirectory() as folder:
        for key, subjects in backbone_pairs(settings):
            models = [build_subject(s) for s in subjects]
            for size, batch in itertools.product(settings.sizes,
                                                 settings.batch_sizes):
                shape = (batch, 3, *size)
                sessions = []
                for subject, model in zip(subjects, models):
                    path = osp.join(folder, f'{subject.name}.onnx')
                    export_backbone(model, path, dynamic=False,
                                    example_size=shape)
                    sessions.append(OrtModel(path, threads=settings.threads))
                image = torch.randn(*shape)
                errors = [_max_error(s, m, image)
                          for s, m in zip(sessions, models)]
                runners = [_session_runner(s, image) for s in sessions]
                times, _ = time_interleaved(runners, settings.warmup,
                                            settings.repeat, lambda: None)
                macs = [count_macs(m, shape) for m in models]
                rows.append([
                    key, f'{size[0]}x{size[1]}', batch,
                    format_ms(times[0]), format_ms(times[1]),
                    format_ratio(times[1], times[0]),
                    format_ratio(macs[1], macs[0]),
                    ', '.join(f'{e:.1e}' for e in errors)
                ])
                print(f'[onnxruntime] {key} {size[0]}x{size[1]} x{batch}: '
                      f'time ratio {rows[-1][5]}', flush=True,
                      file=sys.stderr)
                del sessions
    return markdown_table(ONNX_HEADERS, rows)
