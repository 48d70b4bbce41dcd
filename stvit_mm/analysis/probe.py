"""The CPU memory probe: one model, one forward, in a fresh process.

Run as ``python -m stvit_mm.analysis.probe JOB`` by
:func:`stvit_mm.analysis.memory.cpu_peak_mib`; ``JOB`` is JSON with
``subject`` (a :class:`~stvit_mm.analysis.models.Subject` as a dict),
``batch``, ``size`` ([H, W]) and ``threads``. The last line of its output
is JSON: ``mib`` (the peak-RSS rise of the forward, see
:mod:`stvit_mm.analysis.memory`) and ``method``.
"""
import json
import sys
from typing import Dict, List, Optional

import torch

from .memory import rss_peak_mib
from .models import Subject, build_subject, make_batch
from .timing import make_runner

__all__ = ['probe']


def probe(job: Dict) -> Dict:
    """Build the job's model, run one forward and measure its CPU peak.

    Args:
        job (dict): ``subject``, ``batch``, ``size``, ``threads``.

    Returns:
        dict: ``mib`` and ``method`` (see
        :func:`stvit_mm.analysis.memory.rss_peak_mib`).
    """
    torch.set_num_threads(job['threads'])
    subject = Subject(**job['subject'])
    model = build_subject(subject)
    model.train(subject.train)  # own line: mmdet's Swin.train() -> None
    data = make_batch(subject.task, job['batch'], tuple(job['size']), 'cpu')
    run = make_runner(model, subject.task, data, 'cpu', 'fp32',
                      subject.train)
    # Start the thread pool outside the measurement.
    with torch.no_grad():
        torch.nn.functional.conv2d(torch.ones(1, 8, 16, 16),
                                   torch.ones(8, 8, 3, 3)).sum()
    mib, method = rss_peak_mib(run)
    return dict(mib=mib, method=method)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point: print :func:`probe`'s result of the JSON job in
    ``argv[0]`` (default: the command line) as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(probe(json.loads(argv[0]))))


if __name__ == '__main__':
    main()
