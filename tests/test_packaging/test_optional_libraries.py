"""Any one of mmdet, mmseg and mmpretrain is enough.

Each environment is simulated in a subprocess by a real import blocker: a
``sys.meta_path`` finder placed first that raises ``ModuleNotFoundError``
for the blocked libraries, as Python does for a package that is not
installed (mmseg guards its optional mmdet imports with exactly that
exception). What remains must register and build the backbone; what is
blocked must be refused in one line that names the library and how to
install it.
"""
import subprocess
import sys
import textwrap

import pytest

from helpers.paths import REPO

LIBRARIES = ('mmdet', 'mmseg', 'mmpretrain')

BLOCKER = '''
import sys

class NotInstalled:
    """Finds nothing for the blocked libraries, as if absent."""

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
'''

#: A config of each library's scope, built on the backbone.
CONFIGS = {
    'mmdet': 'configs/examples/retinanet_stvit-r-swin-t_fpn_1x_coco.py',
    'mmseg': 'configs/quickstart/stvit_r_swin_quickstart_ade.py',
    'mmpretrain': 'configs/quickstart/stvit_r_swin_quickstart_in1k.py',
}
PACKAGES = {'mmdet': 'mmdet', 'mmseg': 'mmsegmentation',
            'mmpretrain': 'mmpretrain'}


def run_blocked(blocked, code, *args):
    script = (f'BLOCKED = {set(blocked)!r}\n' + BLOCKER +
              textwrap.dedent(code))
    return subprocess.run([sys.executable, '-c', script, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('kept', LIBRARIES)
def test_one_library_is_enough_to_build_the_backbone(kept):
    blocked = [lib for lib in LIBRARIES if lib != kept]
    proc = run_blocked(blocked, f'''
        import importlib, torch
        import stvit_mm
        from stvit_mm.registry import available_libraries
        print('available', available_libraries())
        for lib in BLOCKED:
            assert lib not in sys.modules, lib
        MODELS = importlib.import_module('{kept}.registry').MODELS
        backbone = MODELS.build(dict(
            type='STViTRSwin', embed_dims=16, depths=(2, 2, 6, 2),
            num_heads=(1, 2, 4, 8)))
        backbone.eval()
        with torch.no_grad():
            outs = backbone(torch.randn(1, 3, 64, 96))
        print('shapes', [tuple(o.shape) for o in outs])
    ''')
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"available ['{kept}']" in proc.stdout
    assert ('shapes [(1, 16, 16, 24), (1, 32, 8, 12), (1, 64, 4, 6), '
            '(1, 128, 2, 3)]') in proc.stdout


@pytest.mark.parametrize('missing', LIBRARIES)
def test_a_config_of_a_missing_library_is_refused_by_the_tool(missing):
    """tools/train.py, run as a user runs it, in an environment that has
    the other two libraries."""
    proc = run_blocked([missing], '''
        import runpy
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name='__main__')
    ''', 'tools/train.py', CONFIGS[missing])
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith('train.py: error: '), proc.stderr[-2000:]
    assert f'needs {PACKAGES[missing]}, which is not installed' in error
    assert f'mim install "{PACKAGES[missing]}>=' in error
    assert CONFIGS[missing] in error


def test_without_any_library_the_import_says_what_to_install():
    proc = run_blocked(LIBRARIES, 'import stvit_mm')
    assert proc.returncode != 0
    error = proc.stderr.strip().splitlines()[-1]
    assert 'MissingLibraryError' in error
    for package in PACKAGES.values():
        assert f'mim install "{package}>=' in error


def test_too_old_a_stack_is_named_on_import(monkeypatch):
    """The minimum-version check reads the installed versions; with the
    minimum raised above them it must refuse, naming each package."""
    from stvit_mm import version
    monkeypatch.setitem(version.MINIMUM_VERSIONS, 'torch',
                        ('999.0', 'a test'))
    monkeypatch.setitem(version.MINIMUM_VERSIONS, 'mmcv', ('99.0', 'a test'))
    with pytest.raises(ImportError) as e:
        version.check_minimum_versions()
    lines = str(e.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('torch 2.') and 'torch>=999.0' in lines[0]
    assert lines[1].startswith('mmcv 2.1.0') and 'mmcv>=99.0' in lines[1]
