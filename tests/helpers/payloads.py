"""Crafted checkpoint pickles that would run code when unpickled.

Each payload reduces to a callable that creates the ``marker`` file (or, for
:class:`GetsAttribute`, fetches an attribute HistoryBuffer's pickles do not
need); a safe loader must refuse it before anything runs. The ``marker``
fixture of ``tests/conftest.py`` checks that the file never appears.
"""
import collections
import functools
import os

import torch


class RunsShell:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class Evals:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f'open({self.marker!r}, "w")', )


class Partial:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return functools.partial, (os.system, f'touch {self.marker}')


class GetsAttribute:
    """``getattr`` is allowed only for what HistoryBuffer pickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return getattr, (collections.OrderedDict, 'fromkeys')


def save_payload(path, payload, legacy=False):
    """A checkpoint with plain weights and ``payload`` as its ``meta``."""
    torch.save(
        {
            'state_dict': {
                'conv.weight': torch.zeros(2, 2, 1, 1)
            },
            'meta': payload
        },
        path,
        _use_new_zipfile_serialization=not legacy)
    return str(path)
