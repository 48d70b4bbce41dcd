"""tools/train.py and tools/test.py, end to end and on their error paths.

The end-to-end tests train the quickstart configs for a few iterations on
tiny COCO / ADE20K-format datasets (the ``coco_root`` and ``ade_root``
fixtures of tests/conftest.py, written by stvit_mm.datasets' generator),
then evaluate the checkpoint with tools/test.py, all as subprocesses of the
project's python, as a user would run them. The error paths are checked
in-process, through the functions the tools call (:mod:`stvit_mm.apis`):
they must fail before any Runner is built.
"""
import os
import pickle
import re
import subprocess
import sys

import cv2
import pytest
from mmengine.config import Config

import stvit_mm.apis.work_dir as work_dir_api
from helpers.paths import QUICKSTART_DET, REPO
from helpers.tools import (FEW_ROIS, NO_GPU, cfg_options, det_data_options,
                           run_tool, seg_data_options, short_run_options)
from stvit_mm.apis import adapt_to_cpu, check_work_dir, run_test, run_train


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
def test_missing_pretrained_and_coco_are_reported_together(
        tmp_path, tool_error):
    message = tool_error(
        run_train, 'configs/cascade_stvit_r_swin_s_3x.py', work_dir=tmp_path,
        cfg_options=cfg_options(
            'model.backbone.init_cfg.checkpoint='
            'checkpoints/stvit_r_swin_s_in1k_mm.pth',
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
    # mmpretrain is served now (ImageNet); another OpenMMLab library is not.
    config = tmp_path / 'ocr.py'
    config.write_text("default_scope = 'mmocr'\nmodel = dict()\n")
    message = tool_error(run_train, config)
    assert "'mmocr'" in message and 'mmdet' in message
    assert 'mmpretrain' in message


def test_train_tool_exits_with_one_error_line(tmp_path):
    """The command line itself: an error the user must fix ends train.py
    with exit status 1 and one ``train.py: error:`` message, no traceback
    (tests/test_engine/test_reliability.py checks test.py the same way)."""
    config = tmp_path / 'ocr.py'
    config.write_text("default_scope = 'mmocr'\nmodel = dict()\n")
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config)],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-4000:]
    error = f"train.py: error: {config}: default_scope is 'mmocr'"
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
