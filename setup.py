"""stvit-mm: STViT-R-Swin for mmdetection, mmsegmentation and mmpretrain.

Packaged as OpenMMLab projects are: the runtime needs torch, mmengine, mmcv
(installed first, with mim, for its compiled ops) and at least one of mmdet,
mmsegmentation and mmpretrain (the ``det``, ``seg`` and ``cls`` extras). The
wheel carries ``configs/`` and ``tools/`` as package data under
``stvit_mm/.mim/``, where the package's tools and ``mim`` look for them.
"""
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
#: Copied into the wheel under stvit_mm/.mim/.
MIM_FOLDERS = ('configs', 'tools')


def read_requirements(name):
    """The requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    scope = {}
    with open(osp.join(HERE, 'stvit_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


class BuildPyWithMim(build_py):
    """``build_py`` that also copies configs/ and tools/ into the built
    package's ``.mim`` folder (an editable install reads them from the
    checkout instead)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = osp.join(self.build_lib, 'stvit_mm', '.mim')
        for folder in MIM_FOLDERS:
            dst = osp.join(target, folder)
            if osp.exists(dst):
                shutil.rmtree(dst)
            shutil.copytree(
                osp.join(HERE, folder), dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


extras = {name: read_requirements(name)
          for name in ('det', 'seg', 'cls', 'tests')}
extras['onnx'] = read_requirements('optional')
extras['mim'] = read_requirements('mminstall')
extras['all'] = sorted({req for reqs in extras.values() for req in reqs})

setup(
    name='stvit-mm',
    version=read_version(),
    description='STViT-R (CVPR 2023) token-sparsified Swin backbones for '
    'mmdetection, mmsegmentation and mmpretrain',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['stvit_mm', 'stvit_mm.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime'),
    extras_require=extras,
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
