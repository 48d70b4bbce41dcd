from setuptools import find_packages, setup

setup(
    name='stvit_mm',
    version='0.1.0',
    description='STViT-R (CVPR 2023) token-sparsified Swin backbones for '
    'mmdetection and mmsegmentation',
    packages=find_packages(include=['stvit_mm', 'stvit_mm.*']),
    python_requires='>=3.11',
    # The pinned stack lives in requirements.txt and is installed by
    # tools/install.sh (mmcv has to be compiled), so nothing is repeated here.
    install_requires=[],
)
