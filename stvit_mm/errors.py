"""The one base class of the errors a user can fix, and how CLIs report them.

Every user-facing error (a missing file, an impossible config, a checkpoint
that does not fit, an unreadable image) derives from :class:`StvitMMError`,
so each command-line tool prints it as one ``<tool>: error: <message>`` line
without a traceback (:func:`exit_on_error`), whatever layer raised it.
"""
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

__all__ = [
    'StvitMMError', 'ConfigError', 'InputError', 'StepFailed', 'exit_on_error'
]


class StvitMMError(Exception):
    """A problem the user has to fix; the message says what and how."""


class ConfigError(StvitMMError):
    """A config, a path it names or a command-line setting cannot be used."""


class InputError(StvitMMError):
    """An input file (an image, a data set) cannot be read or used."""


class StepFailed(StvitMMError):
    """A step of a multi-step run (the quickstart) failed.

    Args:
        step (str): The step's name, for the user (``'train'``, ...).
        message (str): What went wrong.
    """

    def __init__(self, step: str, message: str):
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step


@contextmanager
def exit_on_error(prog: Optional[str] = None) -> Iterator[None]:
    """Turn a :class:`StvitMMError` (and a refused overwrite) into a clean
    exit: ``<prog>: error: <message>`` and exit status 1, no traceback.

    Args:
        prog (str, optional): The tool's name. Defaults to the script name.
    """
    try:
        yield
    except (StvitMMError, FileExistsError) as e:
        prog = prog or osp.basename(sys.argv[0])
        raise SystemExit(f'{prog}: error: {e}') from None
