"""Timing forwards and training steps, interleaved.

A model is wrapped into a runner (:func:`make_runner`), a no-argument
callable doing one inference forward (under ``torch.autocast`` for fp16 /
bf16) or one training step; :func:`time_interleaved` runs the runners of a
comparison in turn (A, B, A, B, ...), so that slow drifts of the machine
hit all of them alike, and reports each one's median. On CUDA every timed
call is bracketed by ``torch.cuda.synchronize()`` (:func:`synchronizer`).
"""
import contextlib
import statistics
import time
from typing import Callable, List, Sequence, Tuple

import torch

__all__ = ['DTYPES', 'make_runner', 'synchronizer', 'time_interleaved']

#: Precisions: fp32, and fp16 / bf16 under ``torch.autocast``.
DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def make_runner(model: torch.nn.Module, task: str, data, device: str,
                dtype: str, train: bool = False) -> Callable[[], object]:
    """A no-argument callable running one forward of ``model``.

    Args:
        model (nn.Module): A backbone or a whole model (on ``device``).
        task (str): ``'backbone'`` (``model(data)``), ``'cls'``
            (``model(data, mode='tensor')``), or ``'det'`` / ``'seg'``
            (``model.test_step(data)``).
        data (Tensor | dict): The input (see
            :func:`stvit_mm.analysis.models.make_batch`).
        device (str): ``'cpu'`` or ``'cuda'``.
        dtype (str): A key of :data:`DTYPES`.
        train (bool): Backbones only: forward and backward of the sum of
            the outputs instead of an inference forward; the gradients are
            dropped again at its end. Defaults to False.

    Returns:
        Callable: The runner; it returns the outputs (None in training).
    """

    def run():
        autocast = (torch.autocast(device_type=device, dtype=DTYPES[dtype])
                    if DTYPES[dtype] is not None else
                    contextlib.nullcontext())
        with torch.set_grad_enabled(train), autocast:
            if task == 'cls':  # backbone, neck and head, to the logits
                return model(data, mode='tensor')
            if task != 'backbone':
                return model.test_step(data)
            outs = model(data)
        if train:
            sum(o.float().sum() for o in outs).backward()
            model.zero_grad(set_to_none=True)
            return None
        return outs

    return run


def synchronizer(device: str) -> Callable[[], None]:
    """``torch.cuda.synchronize`` on CUDA, else a no-op."""
    return torch.cuda.synchronize if device == 'cuda' else (lambda: None)


def time_interleaved(runners: Sequence[Callable], warmup: int, repeat: int,
                     sync: Callable[[], None]) -> Tuple[List[float], list]:
    """Run the runners in turn (A, B, A, B, ...), ``warmup`` untimed rounds
    then ``repeat`` timed ones.

    Args:
        runners (Sequence[Callable]): See :func:`make_runner`.
        warmup (int): Untimed rounds.
        repeat (int): Timed rounds.
        sync (Callable): Called around each timed call
            (:func:`synchronizer`).

    Returns:
        tuple: The median seconds per call of each runner, and each
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
