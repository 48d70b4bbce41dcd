"""The package version and the oldest stack it can run on.

Checked first thing on ``import stvit_mm``, from the installed distributions'
metadata (nothing is imported), so an environment that is too old gets one
line naming what to upgrade instead of an ``AttributeError`` deep inside a
run. The versions tested are the pins in ``requirements.txt``.
"""
import importlib.metadata
import re
from typing import Dict, Tuple

__version__ = '0.1.0'

#: The oldest version of each that stvit_mm's code can run on, and why.
MINIMUM_VERSIONS: Dict[str, Tuple[str, str]] = {
    'torch': ('2.7', 'torch.compiler.is_exporting and weights-only '
              'torch.load with torch.serialization.add_safe_globals'),
    'mmengine': ('0.10.0', 'the checkpoint loaders and HistoryBuffer that '
                 'stvit_mm routes through its safe loader'),
    'mmcv': ('2.0.0', 'the OpenMMLab 2.x building blocks'),
}


def _release(version: str) -> Tuple[int, ...]:
    """``'2.14.1+cu128'`` -> ``(2, 14, 1)``; pre-releases count as the
    release they lead to (``'2.0.0rc4'`` -> ``(2, 0, 0)``)."""
    return tuple(int(part) for part in re.findall(r'\d+', version.split(
        '+')[0].split('rc')[0].split('a')[0].split('b')[0])[:3])


def check_minimum_versions() -> None:
    """Refuse an installed torch, mmengine or mmcv older than
    :data:`MINIMUM_VERSIONS`, naming it and the upgrade.

    A package that is not installed is left to the import that needs it
    (its ``ModuleNotFoundError`` already says which).

    Raises:
        ImportError: One line per package that is too old.
    """
    too_old = []
    for package, (minimum, needed_for) in MINIMUM_VERSIONS.items():
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _release(installed) < _release(minimum):
            too_old.append(f'{package} {installed} is installed but stvit_mm '
                           f'needs {package}>={minimum} ({needed_for}); '
                           f'upgrade it, e.g. pip install '
                           f'"{package}>={minimum}"')
    if too_old:
        raise ImportError('\n'.join(too_old))
