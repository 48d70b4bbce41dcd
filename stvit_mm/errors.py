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

__all__ = ['StvitMMError', 'ConfigError', 'exit_on_error']


class StvitMMError(Exception):
    """A problem the user has to fix; the message says what and how."""


class ConfigError(StvitMMError):
    """A config, a path it names or a command-line setting cannot be used."""


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
