"""Which globals a checkpoint may never name, and the message refusing it.

A pickle can name any importable callable and ask for it to be called while
loading. The safe loader never calls a foreign global (it builds inert
stand-ins), but a checkpoint naming a module that can run code is refused
anyway: no real checkpoint needs one, so the file is almost certainly an
exploit and the user should hear so.
"""
import reprlib

from .errors import CheckpointError

__all__ = [
    'DANGEROUS_MODULES', 'GETATTR_REFUSED', 'is_dangerous', 'refusal',
    'short_repr'
]

# Modules whose callables can run code, start processes, touch files or the
# network, or compose other calls (``functools.partial``,
# ``operator.attrgetter``).
DANGEROUS_MODULES = frozenset({
    'builtins', '__builtin__', 'os', 'posix', 'nt', 'sys', 'subprocess',
    'shutil', 'importlib', 'imp', 'pkgutil', 'zipimport', 'runpy', 'pickle',
    '_pickle', 'cPickle', 'copyreg', 'copy_reg', 'marshal', 'shelve', 'codecs',
    '_codecs', 'functools', '_functools', 'operator', '_operator', 'types',
    'code', 'codeop', 'inspect', 'ctypes', '_ctypes', 'io', '_io', 'tempfile',
    'socket', 'http', 'urllib', 'ftplib', 'smtplib', 'webbrowser',
    'multiprocessing', 'threading', '_thread', 'asyncio', 'signal', 'pty',
    'platform', 'pdb', 'bdb', 'timeit', 'trace', 'profile', 'cProfile',
    'doctest', 'unittest', 'gc', 'weakref', 'site', 'sysconfig', 'distutils',
    'setuptools', 'pip', 'ensurepip', 'venv', 'tarfile', 'zipfile', 'torch._C',
    'torch.ops', 'torch.hub', 'torch.jit', 'torch.package',
    'torch.serialization', 'torch.load', 'torch.utils.cpp_extension',
    'numpy.load', 'numpy.f2py', 'numpy.distutils', 'numpy.testing'
})

#: Start of the message of the guarded ``builtins.getattr`` (see
#: ``safe_globals``); the loader recognises its refusal by it.
GETATTR_REFUSED = 'builtins.getattr in a checkpoint may only fetch'


def is_dangerous(name: str) -> bool:
    """Whether the global ``name`` lies in one of ``DANGEROUS_MODULES``."""
    parts = name.split('.')
    prefixes = ('.'.join(parts[:i]) for i in range(1, len(parts) + 1))
    return any(prefix in DANGEROUS_MODULES for prefix in prefixes)


def refusal(path: str, name: str) -> CheckpointError:
    """The error for a checkpoint at ``path`` that names global ``name``."""
    return CheckpointError(
        f'{path} is not a plain checkpoint: its pickle references {name}, '
        'which could run code when loaded; refusing to load it.')


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80


def short_repr(value) -> str:
    """``repr`` cut to about 80 characters per item.

    Stand-ins and refused arguments can hold large or deeply nested state;
    messages and reprs should stay readable.
    """
    return _repr.repr(value)
