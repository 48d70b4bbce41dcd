"""Peak memory of one forward (or training step), above weights and input.

* CUDA: ``torch.cuda.max_memory_allocated()`` after
  ``reset_peak_memory_stats()``, minus ``memory_allocated()`` before the
  forward: the peak of live tensor bytes (workspaces of cuBLAS/cuDNN
  included, the caching allocator's unused reserve excluded).
* CPU: the rise of the process's peak resident set size during ONE forward,
  measured in a fresh subprocess (``python -m stvit_mm.analysis.probe``)
  that holds only that model and its input: ``VmHWM`` after the forward
  minus ``VmRSS`` before it, with ``VmHWM`` reset through
  ``/proc/self/clear_refs`` just before the forward (Linux; elsewhere
  ``ru_maxrss`` deltas, a lower bound). torch's CPU allocator keeps no
  statistics, tracemalloc does not see its allocations and the profiler's
  per-operator memory gives no peak, so the operating system's view is the
  honest one. The fresh process matters: in a process that already ran
  another model, glibc hands freed-but-kept heap memory to the next forward
  without the RSS rising, which would flatter whichever model runs second.
  The figure includes allocator overhead and first-call caches (e.g.
  STViT-R's per-size index tables), i.e. what a user's process sees. It
  costs one process start and one forward per row and model.
"""
import json
import re
import resource
import subprocess
import sys
from typing import Callable, Optional, Tuple

import torch

from .models import Subject

__all__ = ['cpu_peak_mib', 'cuda_peak_mib', 'peak_mib', 'rss_peak_mib']


def cuda_peak_mib(run: Callable[[], object]) -> float:
    """Peak CUDA tensor memory of one ``run()`` above what was allocated
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


def rss_peak_mib(run: Callable[[], object]) -> Tuple[float, str]:
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


def cpu_peak_mib(subject: Subject, batch: int, size: Tuple[int, int],
                 threads: int) -> Optional[float]:
    """CPU peak memory of one forward of ``subject``, measured in a fresh
    subprocess (``python -m stvit_mm.analysis.probe``).

    Args:
        subject (Subject): The model (``train``: a training step).
        batch (int): Batch size.
        size (tuple): Input (H, W).
        threads (int): CPU threads of the subprocess.

    Returns:
        float | None: MiB; None (with a warning on stderr) if the probe
        failed.
    """
    job = dict(subject=subject.to_dict(), batch=batch, size=list(size),
               threads=threads)
    cmd = [sys.executable, '-m', 'stvit_mm.analysis.probe', json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f'warning: memory probe of {subject.name} failed:\n'
              f'{proc.stderr[-2000:]}', file=sys.stderr)
        return None
    return json.loads(lines[-1])['mib']


def peak_mib(subject: Subject, run: Callable[[], object], device: str,
             batch: int, size: Tuple[int, int],
             threads: int) -> Optional[float]:
    """Peak memory of one forward: :func:`cuda_peak_mib` of ``run`` on
    CUDA, :func:`cpu_peak_mib` of ``subject`` on the CPU."""
    if device == 'cuda':
        return cuda_peak_mib(run)
    return cpu_peak_mib(subject, batch, size, threads)
