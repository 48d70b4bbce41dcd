"""torch.profiler tables of one forward or training step."""
from typing import Callable

from .timing import synchronizer

__all__ = ['profile_table']


def profile_table(run: Callable[[], object], device: str, rows: int) -> str:
    """torch.profiler table of one ``run()``.

    Args:
        run (Callable): A runner (:func:`stvit_mm.analysis.timing.
            make_runner`).
        device (str): ``'cpu'`` or ``'cuda'``.
        rows (int): Entries to list.

    Returns:
        str: The ``rows`` operators and kernels with the most self CUDA
        time (self CPU time on the CPU).
    """
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
