"""How many threads the quickstart's train and test subprocesses get, from
what the machine's cores are doing when they start."""
import os
import time
from typing import Optional, Tuple

__all__ = ['busy_cores', 'choose_threads', 'busy_cores_text']


def _cpu_times() -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):  # not Linux
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle+iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(interval: float = 1.0) -> Optional[float]:
    """How many cores' worth of work the machine does right now.

    Measured over ``interval`` seconds from the kernel's CPU counters, while
    this process sleeps, so it counts other work only. Unlike the 1-minute
    load average it forgets at once a job that has just ended (an install,
    the previous step).

    Args:
        interval (float): Seconds to watch.

    Returns:
        float | None: 0 (idle) to the number of cores, or None where the
        counters cannot be read.
    """
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(interval)
    after = _cpu_times()
    total = after[1] - before[1]
    if total <= 0:
        return None
    return (after[0] - before[0]) / total * (os.cpu_count() or 1)


def choose_threads(requested: Optional[int] = None,
                   busy: Optional[float] = None) -> Optional[int]:
    """The OpenMP/torch thread count for the train and test subprocesses.

    Measured on the 2-core reference machine (quickstart detector, batch 2):
    with the cores free, torch's default of one thread per core is fastest
    (about 1.1 s/iter against 1.25 with one thread); when other jobs keep
    the cores busy (load ~3.5), two threads slow down to 4-7 s/iter while
    one thread keeps about 2 s/iter (OpenMP threads wait for each other at
    every op). So one thread is used when other work occupies at least half
    of the cores now; otherwise torch decides.

    Args:
        requested (int, optional): ``--threads``; wins when given.
        busy (float, optional): Cores busy with other work; measured with
            :func:`busy_cores` when not given.

    Returns:
        int | None: Threads to set, or None to leave torch's default (and an
        ``OMP_NUM_THREADS`` the user exported) alone.
    """
    if requested:
        return requested
    if 'OMP_NUM_THREADS' in os.environ:
        return None
    cores = os.cpu_count() or 1
    if busy is None:
        busy = busy_cores()
    if busy is None:
        return None
    return 1 if cores > 1 and busy >= cores / 2 else None


def busy_cores_text(busy: Optional[float]) -> str:
    """``busy`` for the log ('n/a' where unknown)."""
    return 'n/a' if busy is None else f'{busy:.1f}'
