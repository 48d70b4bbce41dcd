"""Command-line options shared by the tools (``tools/train.py``,
``tools/test.py``, ``tools/deployment/``)."""
import argparse
import os
from typing import List, Optional

from mmengine.config import DictAction

__all__ = [
    'add_cfg_options', 'add_common_args', 'parse_with_common_args',
    'run_kwargs'
]


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options`` (mmengine's ``DictAction``) to a tool's parser."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        'model.backbone.init_cfg=None or train_cfg.max_iters=100; lists as '
        'key="[a,b]" or key=a,b, nested as key="[(a,b),(c,d)]", no spaces')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add the options both tools take: ``--cfg-options``, ``--launcher``
    and ``--local_rank``.

    Args:
        parser (argparse.ArgumentParser): The tool's own parser.
    """
    add_cfg_options(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_with_common_args(parser: argparse.ArgumentParser,
                           argv: Optional[List[str]] = None
                           ) -> argparse.Namespace:
    """Add the common options (:func:`add_common_args`) and parse.

    ``LOCAL_RANK`` is set from ``--local_rank`` when the launcher did not
    set it (``torch.distributed.launch`` passes the option only).

    Args:
        parser (argparse.ArgumentParser): The tool's own parser.
        argv (list[str], optional): Arguments; ``sys.argv`` when None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    add_common_args(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def run_kwargs(args: argparse.Namespace) -> dict:
    """The parsed options as keyword arguments of the tool's ``run_*``
    function (the launcher's ``--local_rank`` is consumed above)."""
    kwargs = vars(args).copy()
    kwargs.pop('local_rank', None)
    return kwargs
