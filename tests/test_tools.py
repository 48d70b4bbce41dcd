"""tools/train.py and tools/test.py, end to end and on their error paths.

The end-to-end tests train the quickstart configs for a few iterations on
tiny COCO / ADE20K-format datasets written here (independent of
stvit_mm/datasets), then evaluate the checkpoint with tools/test.py, all as
subprocesses of the project's python, as a user would run them. The error
paths are checked in-process, through the functions the tools call
(:mod:`stvit_mm.apis`): they must fail before any Runner is built.
"""
import argparse
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import stvit_mm.apis.work_dir as work_dir_api
from stvit_mm.apis import (adapt_to_cpu, add_common_args, check_work_dir,
                           run_test, run_train)
from stvit_mm.errors import exit_on_error

REPO = Path(__file__).resolve().parents[1]

QUICKSTART_DET = 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = 'configs/quickstart/stvit_r_swin_quickstart_ade.py'
CLASSES = ('circle', 'square', 'triangle', 'cross')
COLOURS = [(40, 40, 230), (40, 230, 150), (220, 220, 40), (230, 40, 150)]
NO_GPU = not torch.cuda.is_available()


# ---------------------------------------------------------------------------
# Tiny datasets
# ---------------------------------------------------------------------------
def _scene(rng, size):
    """A noisy background with two coloured rectangles; returns the image
    and ``(label, x0, y0, w, h)`` per object."""
    image = rng.integers(30, 80, (size, size, 3)).astype(np.uint8)
    objects = []
    for k in range(2):
        label = int(rng.integers(len(CLASSES)))
        w, h = (int(v) for v in rng.integers(size // 4, size // 2, 2))
        # Left and right halves: objects never overlap.
        x0 = int(rng.integers(0, size // 2 - w + 1)) + k * size // 2
        y0 = int(rng.integers(0, size - h))
        image[y0:y0 + h, x0:x0 + w] = COLOURS[label]
        objects.append((label, x0, y0, w, h))
    return image, objects


def write_tiny_coco(root: Path, num_train=4, num_val=2, size=96):
    """COCO instance segmentation layout of the quickstart config:
    annotations/instances_{train,val}.json, images in train/ and val/."""
    rng = np.random.default_rng(0)
    (root / 'annotations').mkdir(parents=True)
    for split, num in (('train', num_train), ('val', num_val)):
        (root / split).mkdir()
        images, annotations = [], []
        for i in range(num):
            image, objects = _scene(rng, size)
            name = f'{i:04d}.jpg'
            cv2.imwrite(str(root / split / name), image)
            images.append(dict(id=i + 1, file_name=name, width=size,
                               height=size))
            for label, x0, y0, w, h in objects:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=i + 1,
                        category_id=label + 1,
                        bbox=[x0, y0, w, h],
                        area=w * h,
                        iscrowd=0,
                        segmentation=[[
                            x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h
                        ]]))
        categories = [
            dict(id=k + 1, name=name) for k, name in enumerate(CLASSES)
        ]
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(
                dict(images=images, annotations=annotations,
                     categories=categories), f)


def write_tiny_ade(root: Path, num_train=4, num_val=2, size=96):
    """ADE20K layout: images/{training,validation}/*.jpg and
    annotations/{training,validation}/*.png, 0 = background (ignored)."""
    rng = np.random.default_rng(1)
    for split, num in (('training', num_train), ('validation', num_val)):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(num):
            image, objects = _scene(rng, size)
            label_map = np.zeros((size, size), np.uint8)
            for label, x0, y0, w, h in objects:
                label_map[y0:y0 + h, x0:x0 + w] = label + 1
            cv2.imwrite(str(root / 'images' / split / f'{i:04d}.jpg'), image)
            cv2.imwrite(str(root / 'annotations' / split / f'{i:04d}.png'),
                        label_map)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'tiny_coco'
    write_tiny_coco(root)
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'tiny_ade'
    write_tiny_ade(root)
    return root


# The quickstart configs at a quarter of their image size, so that a few
# iterations take seconds; model, optimizer, hooks and the pipelines' shape
# are the quickstart's.
TINY_DET_CONFIG = """
_base_ = '{base}'
scales = [(160, 80), (160, 96)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(160, 64), (160, 80)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range',
                     crop_size=(48, 72), allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
"""
TINY_SEG_CONFIG = """
_base_ = '{base}'
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(256 * r), int(64 * r)),
                  keep_ratio=True) for r in (0.5, 1.0, 1.5)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
"""


@pytest.fixture(scope='module')
def tiny_configs(tmp_path_factory):
    root = tmp_path_factory.mktemp('configs')
    det = root / 'tiny_quickstart_coco.py'
    seg = root / 'tiny_quickstart_ade.py'
    det.write_text(TINY_DET_CONFIG.format(base=REPO / QUICKSTART_DET))
    seg.write_text(TINY_SEG_CONFIG.format(base=REPO / QUICKSTART_SEG))
    return dict(det=det, seg=seg)


def det_data_options(root: Path) -> list:
    ann = f'{root}/annotations/instances_val.json'
    return [
        f'train_dataloader.dataset.data_root={root}/',
        f'val_dataloader.dataset.data_root={root}/',
        f'test_dataloader.dataset.data_root={root}/',
        f'val_evaluator.ann_file={ann}',
        f'test_evaluator.ann_file={ann}',
    ]


# Fewer RoIs through the three cascade stages: they dominate the CPU time.
FEW_ROIS = [
    *(f'model.train_cfg.rcnn.{i}.sampler.num=32' for i in range(3)),
    'model.train_cfg.rpn_proposal.max_per_img=100',
    'model.test_cfg.rpn.max_per_img=50',
]


def seg_data_options(root: Path) -> list:
    return [
        f'{split}_dataloader.dataset.data_root={root}/'
        for split in ('train', 'val', 'test')
    ]


def short_run_options(iters: int) -> list:
    # One worker: the test machine has 2 cores shared with other jobs.
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


def run_tool(*args, timeout=240):
    """Run a tool like a user: the project's python, from the repo root."""
    # One thread: tiny models, and a busy machine punishes OpenMP threads.
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *map(str, args)],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


def metric(output: str, name: str) -> float:
    """The last value of ``name`` printed by the Runner's logger."""
    values = re.findall(rf'{re.escape(name)}: (-?[0-9.]+)', output)
    assert values, f'{name} not in output:\n{output[-3000:]}'
    return float(values[-1])


# ---------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------
def test_detection_train_then_test(coco_root, tiny_configs, tmp_path):
    """Quickstart Cascade Mask R-CNN: 2 iterations with --amp (fp32 on a CPU
    machine, with a warning), validation, then COCO bbox+segm evaluation of
    the checkpoint with --out and --show-dir."""
    config = tiny_configs['det']
    work_dir = tmp_path / 'work'
    options = det_data_options(coco_root) + FEW_ROIS
    output = run_tool('tools/train.py', config, '--work-dir', work_dir,
                      '--amp', '--cfg-options', *options,
                      *short_run_options(2))
    if NO_GPU:
        assert 'AmpOptimWrapper (mixed precision) needs a GPU' in output
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()
    assert (work_dir / config.name).is_file()  # the config the Runner ran
    assert 0.0 <= metric(output, 'coco/bbox_mAP') <= 1.0

    out_pkl = tmp_path / 'preds.pkl'
    show_dir = tmp_path / 'show'
    output = run_tool('tools/test.py', config, checkpoint, '--work-dir',
                      tmp_path / 'test', '--out', out_pkl, '--show-dir',
                      show_dir, '--cfg-options', *options,
                      *short_run_options(2))
    for name in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert 0.0 <= metric(output, name) <= 1.0
    with open(out_pkl, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2
    assert {'bboxes', 'scores', 'labels', 'masks'
            } <= set(predictions[0]['pred_instances'])
    assert len(list(show_dir.iterdir())) == 2


def test_segmentation_train_resume_then_test(ade_root, tiny_configs,
                                             tmp_path):
    """Quickstart UperNet: 2 iterations with --auto-scale-lr, resumed to 3,
    then mIoU with multi-scale flip TTA and label maps written by --out."""
    config = tiny_configs['seg']
    work_dir = tmp_path / 'work'
    options = seg_data_options(ade_root)
    output = run_tool('tools/train.py', config, '--work-dir', work_dir,
                      '--auto-scale-lr', '--cfg-options', *options,
                      *short_run_options(2))
    # 2 images x 1 process against the recipe's 16.
    assert 'Scaling the original LR by 0.125' in output
    assert (work_dir / 'iter_2.pth').is_file()
    assert 0.0 <= metric(output, 'mIoU') <= 100.0

    output = run_tool('tools/train.py', config, '--work-dir', work_dir,
                      '--resume', '--cfg-options', *options,
                      *short_run_options(3))
    assert 'Auto resumed from the latest checkpoint' in output
    assert 'resumed epoch: 0, iter: 2' in output
    checkpoint = work_dir / 'iter_3.pth'
    assert checkpoint.is_file()

    out_dir, show_dir = tmp_path / 'pred_png', tmp_path / 'show'
    output = run_tool('tools/test.py', config, checkpoint, '--work-dir',
                      tmp_path / 'test', '--tta', '--out', out_dir,
                      '--show-dir', show_dir, '--cfg-options', *options,
                      *short_run_options(3))
    assert 0.0 <= metric(output, 'mIoU') <= 100.0
    pngs = sorted(out_dir.glob('*.png'))
    assert len(pngs) == 2
    assert cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED).shape == (96, 96)
    # mmseg's visualizer writes through its LocalVisBackend.
    assert len(list(show_dir.glob('vis_data/vis_image/*.png'))) == 2


def test_dist_train_and_test_on_cpu(ade_root, tiny_configs, tmp_path):
    """tools/dist_train.sh and tools/dist_test.sh with 2 processes: on a
    machine without CUDA the runs must fall back to gloo and CPU DDP."""
    if not NO_GPU:
        pytest.skip('exercises the CPU fallback of distributed runs')
    config, work_dir = str(tiny_configs['seg']), tmp_path / 'work'
    options = seg_data_options(ade_root) + short_run_options(1)
    env = dict(os.environ, PYTHON=sys.executable, PORT='29731',
               OMP_NUM_THREADS='1')

    def run_script(*args):
        proc = subprocess.run(['bash', *map(str, args)],
                              cwd=REPO,
                              env=env,
                              capture_output=True,
                              text=True,
                              timeout=240)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-6000:]
        return output

    # 4 training images: one batch of 2 per process.
    output = run_script('tools/dist_train.sh', config, 2, '--work-dir',
                        work_dir, '--cfg-options', *options)
    assert "-> 'gloo'" in output
    checkpoint = work_dir / 'iter_1.pth'
    assert checkpoint.is_file()

    output = run_script('tools/dist_test.sh', config, checkpoint, 2,
                        '--work-dir', tmp_path / 'test', '--cfg-options',
                        *options)
    assert "-> 'gloo'" in output
    assert 0.0 <= metric(output, 'mIoU') <= 100.0


# ---------------------------------------------------------------------------
# Failing early, with a message that says what to do
# ---------------------------------------------------------------------------
def cfg_options(*pairs) -> dict:
    """``--cfg-options`` key=value pairs as the tools' parser reads them."""
    parser = argparse.ArgumentParser()
    add_common_args(parser)
    return parser.parse_args(['--cfg-options', *map(str, pairs)]).cfg_options


#: The tool that makes each call, for its ``<tool>: error:`` line.
PROGS = {run_train: 'train.py', run_test: 'test.py'}


def exit_message(func, *args, **kwargs) -> str:
    """Call ``func`` (:func:`run_train` or :func:`run_test`) as its tool
    does, paths as strings, and return the message the tool exits with."""
    args = [str(a) for a in args]
    kwargs = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in kwargs.items()
    }
    with pytest.raises(SystemExit) as excinfo, exit_on_error(PROGS[func]):
        func(*args, **kwargs)
    return str(excinfo.value.code)


@pytest.fixture
def tool_error(monkeypatch):
    """``tool_error(func, *args, **kwargs)`` runs what ``tools/train.py``
    (``run_train``) or ``tools/test.py`` (``run_test``) runs in-process from
    the repository root, like a user, and returns the message the tool
    exits with; it fails if the tool gets as far as building a Runner."""
    import mmengine.runner

    def no_runner(*args, **kwargs):
        raise AssertionError('reached Runner construction')

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(mmengine.runner.Runner, 'from_cfg', no_runner)
    return exit_message


def test_missing_pretrained_and_coco_are_reported_together(
        tmp_path, tool_error):
    message = tool_error(
        run_train, 'configs/cascade_stvit_r_swin_s_3x.py', work_dir=tmp_path,
        cfg_options=cfg_options(
            f'train_dataloader.dataset.data_root={tmp_path}/no/'))
    assert str(REPO / 'checkpoints/stvit_r_swin_s_in1k_mm.pth') in message
    assert 'tools/model_converters/stvit_r_official_to_mm.py' in message
    assert 'STViT-R-Swin-S.pth' in message
    assert 'model.backbone.init_cfg=None' in message
    assert f'{tmp_path}/no' in message
    assert 'COCO layout' in message


def test_training_from_scratch_needs_no_weights(tmp_path, tool_error):
    message = tool_error(
        run_train, 'configs/upernet_stvit_r_swin_b_160k_ade20k.py',
        work_dir=tmp_path,
        cfg_options=cfg_options(
            'model.backbone.init_cfg=None',
            f'train_dataloader.dataset.data_root={tmp_path}/ade/',
            f'val_dataloader.dataset.data_root={tmp_path}/ade/'))
    assert 'Pretrained' not in message
    assert f'{tmp_path}/ade' in message and 'ADE20K layout' in message


def test_missing_synthetic_data_points_to_make_demo(tmp_path, tool_error):
    message = tool_error(
        run_train, QUICKSTART_DET, work_dir=tmp_path,
        cfg_options=cfg_options(
            f'train_dataloader.dataset.data_root={tmp_path}/synthetic_coco/',
            f'val_dataloader.dataset.data_root={tmp_path}/synthetic_coco/',
            f'val_evaluator.ann_file={tmp_path}/synthetic_coco/annotations/'
            'instances_val.json'))
    assert f'{tmp_path}/synthetic_coco' in message
    assert 'make demo' in message
    # The missing root is named once, not every file under it.
    assert 'instances_train.json' not in message


def test_missing_ann_file_is_named(coco_root, tmp_path, tool_error):
    message = tool_error(
        run_train, QUICKSTART_DET, work_dir=tmp_path,
        cfg_options=cfg_options(
            *det_data_options(coco_root),
            'train_dataloader.dataset.ann_file=annotations/missing.json'))
    assert str(coco_root / 'annotations/missing.json') in message


def test_work_dir_of_another_config_is_refused(coco_root, tmp_path,
                                               tool_error):
    (tmp_path / 'iter_300.pth').write_bytes(b'')
    (tmp_path / 'stvit_r_swin_quickstart_ade.py').write_text('')
    kwargs = dict(
        work_dir=tmp_path, cfg_options=cfg_options(
            *det_data_options(coco_root)))
    message = tool_error(run_train, QUICKSTART_DET, **kwargs)
    assert 'stvit_r_swin_quickstart_ade.py' in message
    assert 'iter_300.pth' in message and '--work-dir' in message
    # A bare --resume would load the other config's checkpoint: refused too.
    message = tool_error(run_train, QUICKSTART_DET, resume='auto', **kwargs)
    assert 'stvit_r_swin_quickstart_ade.py' in message


def test_work_dir_of_the_same_config_warns(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(work_dir_api, 'warn', warnings.append)
    (tmp_path / 'iter_300.pth').write_bytes(b'')
    (tmp_path / 'stvit_r_swin_quickstart_coco.py').write_text('')
    check_work_dir(str(tmp_path), QUICKSTART_DET, None)
    assert len(warnings) == 1 and 'overwrites them' in warnings[0]
    assert '--resume' in warnings[0]
    check_work_dir(str(tmp_path), QUICKSTART_DET, 'auto')
    check_work_dir(str(tmp_path / 'fresh'), QUICKSTART_DET, None)
    assert len(warnings) == 1


def test_unsupported_scope_is_refused(tmp_path, tool_error):
    config = tmp_path / 'cls.py'
    config.write_text("default_scope = 'mmpretrain'\nmodel = dict()\n")
    message = tool_error(run_train, config)
    assert "'mmpretrain'" in message and 'mmdet' in message


def test_train_tool_exits_with_one_error_line(tmp_path):
    """The command line itself: an error the user must fix ends train.py
    with exit status 1 and one ``train.py: error:`` message, no traceback
    (tests/test_reliability.py checks test.py the same way)."""
    config = tmp_path / 'cls.py'
    config.write_text("default_scope = 'mmpretrain'\nmodel = dict()\n")
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config)],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-4000:]
    error = f"train.py: error: {config}: default_scope is 'mmpretrain'"
    assert any(line.startswith(error) for line in output.splitlines()), \
        output[-4000:]
    assert 'Traceback' not in output


def test_test_tool_errors(coco_root, tmp_path, tool_error):
    options = cfg_options(*det_data_options(coco_root))
    message = tool_error(
        run_test, QUICKSTART_DET, tmp_path / 'missing.pth',
        cfg_options=options)
    assert 'missing.pth' in message
    checkpoint = tmp_path / 'ckpt.pth'
    checkpoint.write_bytes(b'')
    message = tool_error(
        run_test, QUICKSTART_DET, checkpoint, tta=True, cfg_options=options)
    assert 'masks' in message
    message = tool_error(
        run_test, 'configs/upernet_swin_s_160k_ade20k.py', checkpoint,
        cfg_options=cfg_options(
            f'test_dataloader.dataset.data_root={tmp_path}/ade/'))
    assert f'{tmp_path}/ade' in message


# ---------------------------------------------------------------------------
# CPU adaptations
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not NO_GPU, reason='adaptations apply without CUDA')
def test_cpu_adaptations():
    cfg = Config.fromfile(str(REPO / 'configs/cascade_stvit_r_swin_s_3x.py'))
    adapt_to_cpu(cfg, distributed=False, training=True)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.model.roi_head.bbox_head[0].norm_cfg.type == 'SyncBN'
    assert 'model_wrapper_cfg' not in cfg

    adapt_to_cpu(cfg, distributed=True, training=True)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert 'SyncBN' not in str(cfg.model)
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
