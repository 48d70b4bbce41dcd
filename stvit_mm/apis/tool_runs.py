"""Running the project's tools as subprocesses, and reading what they leave.

The quickstart (:mod:`stvit_mm.apis.quickstart`) runs ``tools/train.py``
and ``tools/test.py`` as the user would, streaming their logs (iterations,
losses, ETA), then finds the final checkpoint and the evaluator's metrics.
"""
import collections
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from ..errors import StepFailed

__all__ = [
    'run_streamed', 'find_checkpoint', 'parse_test_metrics',
    'metrics_from_record', 'cfg_options_dict', 'format_duration',
    'NON_METRIC_KEYS', 'fresh_work_dir'
]

# Keys in the test log that describe the run, not the model.
NON_METRIC_KEYS = {'data_time', 'time', 'step', 'iter', 'epoch', 'memory'}

_METRIC_RE = re.compile(r'([\w/.-]+): (-?\d+(?:\.\d+)?(?:e-?\d+)?)')


def run_streamed(step: str, cmd: List[str], log_path: str,
                 threads: Optional[int] = None) -> List[str]:
    """Run a command from the repository root, echoing its output live and
    saving it to a file.

    Args:
        step (str): Step name for the error message.
        cmd (list[str]): Command line (``[python, tool, ...]``).
        log_path (str): Where the combined stdout/stderr is copied.
        threads (int, optional): ``OMP_NUM_THREADS`` for the command.

    Returns:
        list[str]: The last 400 lines of output.

    Raises:
        StepFailed: If the command exits non-zero.
    """
    print(f'[demo] {step}: {" ".join(cmd)}', flush=True)
    tail = collections.deque(maxlen=400)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            tail.append(line)
    if proc.returncode != 0:
        raise StepFailed(
            step, f'{osp.basename(cmd[1])} exited with status '
            f'{proc.returncode}; see the output above or {log_path}')
    return list(tail)


def find_checkpoint(work_dir: str) -> str:
    """The checkpoint a training run finished with.

    Args:
        work_dir (str): The training work dir.

    Returns:
        str: Path of the last checkpoint (``last_checkpoint``'s, else the
        newest ``*.pth``).

    Raises:
        StepFailed: If there is none (step ``'train'``).
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        if path and not osp.isabs(path):
            path = osp.join(work_dir, path)
        if osp.isfile(path):
            return path
    ckpts = glob.glob(osp.join(work_dir, '*.pth'))
    if not ckpts:
        raise StepFailed('train', f'no checkpoint was written in {work_dir}')
    return max(ckpts, key=osp.getmtime)


def parse_test_metrics(test_dir: str, lines: Sequence[str]) -> Dict:
    """Read the evaluator's metrics of a finished ``tools/test.py`` run.

    mmengine's LoggerHook dumps them to ``<work_dir>/<timestamp>/
    <timestamp>.json``; the final ``(test)`` log line is the fallback.

    Args:
        test_dir (str): The ``--work-dir`` given to test.py.
        lines (Sequence[str]): Its output.

    Returns:
        dict: Metric name to value, timing entries removed.
    """
    for path in sorted(glob.glob(osp.join(test_dir, '*', '*.json')),
                       key=osp.getmtime, reverse=True):
        try:
            with open(path) as f:
                record = json.load(f)
        except ValueError:
            continue
        metrics = metrics_from_record(record)
        if metrics:
            return metrics
    for line in reversed(lines):
        if '(test)' in line:
            metrics = {
                k: float(v)
                for k, v in _METRIC_RE.findall(line.split('(test)', 1)[1])
                if k not in NON_METRIC_KEYS
            }
            if metrics:
                return metrics
    return {}


def metrics_from_record(record) -> Dict:
    """The metrics in a record of evaluation results (the JSON that
    mmengine's LoggerHook dumps after testing, or the quickstart's
    ``metrics.json``): numeric entries, timing entries removed.

    Args:
        record: The parsed JSON; anything but a dict gives no metrics.

    Returns:
        dict: Metric name to value.
    """
    if not isinstance(record, dict):
        return {}
    return {
        k: v
        for k, v in record.items() if k not in NON_METRIC_KEYS
        and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def cfg_options_dict(options: Sequence[str]) -> Dict:
    """Parse ``key=value`` items the way mmengine's ``DictAction`` does."""
    from mmengine.config import DictAction
    parsed = {}
    for item in options:
        key, value = item.split('=', 1)
        parsed[key] = DictAction._parse_iterable(value)
    return parsed


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; ``9.6`` -> ``'10s'``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes}m{secs:02d}s' if minutes else f'{secs}s'


def fresh_work_dir(work_dir: str) -> str:
    """The work dir to use without touching anything a user already has.

    Args:
        work_dir (str): The requested work dir.

    Returns:
        str: ``work_dir`` if it is missing or empty, else a new sibling
        ``<work_dir>_<timestamp>`` (with a counter if that exists too).
    """
    if not osp.exists(work_dir) or (osp.isdir(work_dir)
                                    and not os.listdir(work_dir)):
        return work_dir
    stem = f"{work_dir.rstrip(os.sep)}_{time.strftime('%Y%m%d_%H%M%S')}"
    candidate, n = stem, 1
    while osp.exists(candidate):
        candidate, n = f'{stem}_{n}', n + 1
    return candidate
