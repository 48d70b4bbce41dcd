"""How many threads the quickstart's train and test subprocesses get, from
the machine's load when it starts."""
import os
from typing import Optional

__all__ = ['choose_threads', 'load_average_text']


def choose_threads(requested: Optional[int] = None) -> Optional[int]:
    """The OpenMP/torch thread count for the train and test subprocesses.

    Measured on the 2-core reference machine (quickstart detector, batch 2):
    with the cores free, torch's default of one thread per core is fastest
    (about 1.1 s/iter against 1.25 with one thread); when other jobs keep
    the cores busy (load ~3.5), two threads slow down to 4-7 s/iter while
    one thread keeps about 2 s/iter (OpenMP threads wait for each other at
    every op). So one thread is used when, at the start of the demo, the
    1-minute load average already shows other work on at least half of the
    cores; otherwise torch decides.

    Args:
        requested (int, optional): ``--threads``; wins when given.

    Returns:
        int | None: Threads to set, or None to leave torch's default (and an
        ``OMP_NUM_THREADS`` the user exported) alone.
    """
    if requested:
        return requested
    if 'OMP_NUM_THREADS' in os.environ:
        return None
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return None
    return 1 if cores > 1 and load >= cores / 2 else None


def load_average_text() -> str:
    """The 1-minute load average as text ('n/a' where unknown)."""
    try:
        return f'{os.getloadavg()[0]:.2f}'
    except (AttributeError, OSError):
        return 'n/a'
