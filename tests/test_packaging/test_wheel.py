"""The wheel, installed where a user installs it: into an environment that
has the OpenMMLab stack but not this checkout.

The second environment is a venv whose site-packages has a ``.pth`` line
naming the stack's site-packages. A folder added that way does not run its
own ``.pth`` files, so the checkout's editable install stays invisible
there: only the wheel provides ``stvit_mm``. mmdet's own ``tools/train.py``
and ``tools/test.py`` (shipped in the mmdet wheel) then train and evaluate a
stock mmdet config whose backbone is swapped through ``custom_imports``.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from helpers.paths import REPO

#: What the copy of the checkout that the wheel is built from leaves out.
NOT_SOURCES = ('.venv', '.git', 'work_dirs', 'data', 'checkpoints', 'build',
               'dist', '*.egg-info', '__pycache__', '.pytest_cache', '.mim')

USER_CONFIG = """
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)

classes = ('circle', 'square', 'triangle', 'cross')
model = dict(
    backbone=dict(
        _delete_=True, type='STViTRSwin', embed_dims=16, depths=(2, 2, 6, 2),
        num_heads=(1, 2, 4, 8), init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128]),
    roi_head=dict(
        bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))

data_root = '{data_root}/'
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
"""


def run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


@pytest.fixture(scope='module')
def user_env(tmp_path_factory):
    """A venv with the stack (by a .pth line) and the wheel installed, and
    the times its steps took."""
    root = tmp_path_factory.mktemp('user_env')
    source = root / 'source'
    shutil.copytree(REPO, source,
                    ignore=shutil.ignore_patterns(*NOT_SOURCES))
    times = {}
    start = time.time()
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '-q', '-w', root / 'dist', source], root)
    wheel, = (root / 'dist').glob('stvit_mm-*.whl')
    times['build wheel'] = time.time() - start

    venv = root / 'venv'
    start = time.time()
    run([sys.executable, '-m', 'venv', '--without-pip', venv], root)
    python = venv / 'bin' / 'python'
    site = run([python, '-c', 'import sysconfig; '
                'print(sysconfig.get_paths()["purelib"])'], root).strip()
    Path(site, 'openmmlab_stack.pth').write_text(
        sysconfig.get_paths()['purelib'] + '\n')
    run([python, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q',
         wheel], root)
    times['venv + install'] = time.time() - start
    return dict(python=python, site=Path(site), wheel=wheel, times=times,
                root=root)


def user_run_env():
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                PYTHONPATH='')


def test_the_wheel_is_used_and_ships_configs_and_tools(user_env, tmp_path):
    out = run([user_env['python'], '-c', (
        'import stvit_mm, os.path as osp\n'
        'from stvit_mm.utils.resources import find_resource, resource_root\n'
        'print(stvit_mm.__file__)\n'
        'print(resource_root())\n'
        "print(find_resource('configs/cascade_stvit_r_swin_s_3x.py'))\n")],
        tmp_path, env=user_run_env())
    package, resources, config = out.strip().splitlines()[-3:]
    assert Path(package).is_relative_to(user_env['site']), package
    assert not Path(package).is_relative_to(REPO)
    assert Path(resources) == user_env['site'] / 'stvit_mm' / '.mim'
    assert Path(config).is_file()
    for shipped in ('configs/_base_/models/stvit_r_swin_s.py',
                    'configs/metafile.yml', 'tools/train.py',
                    'tools/model_converters/stvit_r_official_to_mm.py'):
        assert (Path(resources) / shipped).is_file(), shipped


def test_stock_mmdet_tools_train_and_test_a_swapped_config(
        user_env, coco_root, tmp_path):
    import mmdet
    mmdet_tools = Path(mmdet.__file__).parent / '.mim' / 'tools'
    config = tmp_path / 'mask-rcnn_stvit-r-swin-t_tiny.py'
    config.write_text(USER_CONFIG.format(data_root=coco_root))
    work_dir = tmp_path / 'work'
    env = user_run_env()

    start = time.time()
    output = run([user_env['python'], mmdet_tools / 'train.py', config,
                  '--work-dir', work_dir], tmp_path, env=env)
    train_s = time.time() - start
    assert 'Epoch(train) [1][2/2]' in output, output[-3000:]
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()

    start = time.time()
    output = run([user_env['python'], mmdet_tools / 'test.py', config,
                  checkpoint, '--work-dir', tmp_path / 'test'], tmp_path,
                 env=env)
    test_s = time.time() - start
    assert 'coco/bbox_mAP:' in output and 'coco/segm_mAP:' in output
    times = dict(user_env['times'], **{'mmdet train.py (2 iterations)':
                                       train_s, 'mmdet test.py': test_s})
    print('; '.join(f'{k} {v:.1f} s' for k, v in times.items()))
