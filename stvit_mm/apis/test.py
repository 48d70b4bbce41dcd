"""Evaluating a checkpoint of a detector (mmdet) or a segmentor (mmseg):
what ``tools/test.py`` does.

The library is chosen by the config's ``default_scope``: COCO bbox/segm AP
for the detection configs, mIoU for the segmentation ones. Like training
it imports ``stvit_mm``, checks the checkpoint and the test data before
building anything, and adapts distributed runs to machines without CUDA. A
checkpoint whose weights do not fit the model is refused with the list of
mismatched keys (mmengine would only warn and evaluate a partly random
model), and an unreadable image is named.
"""
import os.path as osp
from copy import deepcopy
from typing import Optional

from mmengine.config import Config, ConfigDict

from ..errors import ConfigError
from .machine import adapt_to_cpu
from .preflight import check_checkpoint, check_data, report_problems
from .runner import build_runner, close_distributed
from .safeguards import install_safeguards
from .work_dir import load_run_config

__all__ = ['build_test_config', 'run_test']


def _has_mask_head(model_cfg) -> bool:
    roi_head = model_cfg.get('roi_head') or {}
    return bool(roi_head.get('mask_head')) or 'mask_head' in model_cfg


def _default_det_tta(cfg: Config) -> None:
    """Horizontal-flip TTA built from the test pipeline, as mmdet's own
    tools/test.py does for configs without ``tta_model``/``tta_pipeline``."""
    if 'tta_model' not in cfg:
        cfg.tta_model = ConfigDict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        pipeline = deepcopy(test_data_cfg.pipeline)
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ],
                [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ],
            ])
        cfg.tta_pipeline = pipeline


def _show(cfg: Config, scope: str, show_dir: str) -> None:
    """``--show-dir``: paint the predictions into ``show_dir``."""
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise ConfigError(
            '--show-dir needs a visualization hook in default_hooks '
            "(DetVisualizationHook / SegVisualizationHook).")
    show_dir = osp.abspath(show_dir)
    hooks.visualization.draw = True
    if scope == 'mmdet':
        # Joined onto work_dir/<timestamp>/ by the hook; absolute stays.
        hooks.visualization.test_out_dir = show_dir
    else:
        # SegVisualizationHook paints every `interval`-th batch (50 by
        # default) into the visualizer's save_dir.
        hooks.visualization.interval = 1
        cfg.visualizer.save_dir = show_dir


def _tta(cfg: Config, scope: str) -> None:
    """``--tta``: wrap the model in the config's (or mmdet's default) TTA
    model and test with the TTA pipeline."""
    if scope == 'mmdet':
        if _has_mask_head(cfg.model):
            raise ConfigError(
                '--tta: mmdet\'s DetTTAModel merges boxes only and '
                'cannot merge instance masks, so it does not run '
                'instance-segmentation models such as this one. The '
                "paper's COCO numbers are single-scale: drop --tta.")
        _default_det_tta(cfg)
    elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ConfigError('--tta needs tta_model and tta_pipeline in the '
                          'config (see configs/upernet_swin_s_160k_'
                          'ade20k.py).')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_test_config(config: str,
                      checkpoint: str,
                      work_dir: Optional[str] = None,
                      out: Optional[str] = None,
                      show_dir: Optional[str] = None,
                      tta: bool = False,
                      cfg_options: Optional[dict] = None,
                      launcher: str = 'none') -> Config:
    """Load a config for testing ``checkpoint`` and apply the command line,
    checking the checkpoint and the test data.

    Args:
        config (str): The config file.
        checkpoint (str): The checkpoint to evaluate (a path or a URL).
        work_dir (str, optional): ``--work-dir``; by default the config's,
            else ``work_dirs/<config name>``.
        out (str, optional): ``--out``: detection, a ``.pkl`` file for the
            predictions; segmentation, a directory for the label maps.
        show_dir (str, optional): ``--show-dir``: paint the predictions on
            the test images into this directory.
        tta (bool): ``--tta``: test-time augmentation.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        launcher (str): ``--launcher``. Defaults to ``'none'``.

    Returns:
        Config: The config to build the Runner from.

    Raises:
        ConfigError: For anything the user must fix; missing data and a
            damaged checkpoint are reported together.
    """
    cfg, scope = load_run_config(config, work_dir, cfg_options, launcher)

    if not osp.isfile(checkpoint) and '://' not in checkpoint:
        raise ConfigError(f'checkpoint not found: {osp.abspath(checkpoint)}')
    cfg.load_from = checkpoint

    if show_dir:
        _show(cfg, scope, show_dir)
    if tta:
        _tta(cfg, scope)

    if out is not None and scope == 'mmseg':
        # IoUMetric writes one png per image there.
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    elif out is not None and not out.endswith(('.pkl', '.pickle')):
        raise ConfigError(f'--out must be a .pkl file, got {out}')

    # Both checks run, so that one message lists everything that is wrong.
    report_problems(lambda: check_data(cfg, scope, ['test']),
                    lambda: check_checkpoint(checkpoint, 'checkpoint'))
    adapt_to_cpu(cfg, distributed=launcher != 'none', training=False)
    # Evaluating weights that only partly fit the model would report the
    # score of a half-random model; refuse them, listing the keys.
    install_safeguards(cfg, training=False, strict_checkpoint=True)
    return cfg


def run_test(config: str, checkpoint: str, launcher: str = 'none',
             **options) -> dict:
    """Evaluate ``checkpoint``: :func:`build_test_config`, then the Runner.

    Args:
        config (str): The config file.
        checkpoint (str): See :func:`build_test_config`.
        launcher (str): ``--launcher``. Defaults to ``'none'``.
        **options: The other arguments of :func:`build_test_config`
            (``work_dir``, ``out``, ``show_dir``, ``tta``, ``cfg_options``).

    Returns:
        dict: The metrics.

    Raises:
        ConfigError: As :func:`build_test_config`, before anything is built.
        CheckpointError: The checkpoint is unsafe or does not fit the model.
    """
    cfg = build_test_config(config, checkpoint, launcher=launcher, **options)
    runner = build_runner(cfg, launcher)
    out = options.get('out')
    if out is not None and cfg.default_scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=out))
    metrics = runner.test()
    close_distributed()
    return metrics
