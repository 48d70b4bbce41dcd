"""Running ``tools/train.py`` and ``tools/test.py`` as a user would, and
the command-line options that point them at the tiny datasets.

The tools run as subprocesses of the project's python (:func:`run_tool`)
or in-process through the functions they call (:func:`exit_message`, and
the ``tool_error`` fixture of ``tests/conftest.py`` built on it).
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.paths import REPO
from stvit_mm.apis import add_common_args, run_test, run_train
from stvit_mm.errors import exit_on_error

NO_GPU = not torch.cuda.is_available()

# Fewer RoIs through the three cascade stages: they dominate the CPU time.
FEW_ROIS = [
    *(f'model.train_cfg.rcnn.{i}.sampler.num=32' for i in range(3)),
    'model.train_cfg.rpn_proposal.max_per_img=100',
    'model.test_cfg.rpn.max_per_img=50',
]


def det_data_options(root: Path) -> list:
    ann = f'{root}/annotations/instances_val.json'
    return [
        f'train_dataloader.dataset.data_root={root}/',
        f'val_dataloader.dataset.data_root={root}/',
        f'test_dataloader.dataset.data_root={root}/',
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
    ]


def seg_data_options(root: Path) -> list:
    return [
        f'{split}_dataloader.dataset.data_root={root}/'
        for split in ('train', 'val', 'test')
    ]


def short_run_options(iters: int) -> list:
    # One worker: the test machine has 2 cores shared with other jobs.
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


def run_tool(*args, timeout=240):
    """Run a tool like a user: the project's python, from the repo root."""
    # One thread: tiny models, and a busy machine punishes OpenMP threads.
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *map(str, args)],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


def cfg_options(*pairs) -> dict:
    """``--cfg-options`` key=value pairs as the tools' parser reads them."""
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    return parser.parse_args(['--cfg-options', *map(str, pairs)]).cfg_options


#: The tool that makes each call, for its ``<tool>: error:`` line.
PROGS = {run_train: 'train.py', run_test: 'test.py'}


def exit_message(func, *args, **kwargs) -> str:
    """Call ``func`` (:func:`run_train` or :func:`run_test`) as its tool
    does, paths as strings, and return the message the tool exits with."""
    args = [str(a) for a in args]
    kwargs = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in kwargs.items()
    }
    with pytest.raises(SystemExit) as excinfo, exit_on_error(PROGS[func]):
        func(*args, **kwargs)
    return str(excinfo.value.code)
