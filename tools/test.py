"""Evaluate a checkpoint of a detector (mmdet) or a segmentor (mmseg).

The library is chosen by the config's ``default_scope``: COCO bbox/segm AP
for the detection configs, mIoU for the segmentation ones. Like
``tools/train.py`` it imports ``stvit_mm``, checks the checkpoint and the
test data before building anything, and adapts distributed runs to
machines without CUDA. A checkpoint whose weights do not fit the model is
refused with the list of mismatched keys (mmengine would only warn and
evaluate a partly random model), and an unreadable image is named.

Examples::

    python tools/test.py configs/cascade_stvit_r_swin_s_3x.py ckpt.pth
    python tools/test.py configs/upernet_stvit_r_swin_s_160k_ade20k.py \\
        ckpt.pth --tta   # multi-scale + flip, the paper's ADE20K protocol
"""
import argparse
import os.path as osp
import sys
from copy import deepcopy

from mmengine.config import Config, ConfigDict

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import tool_utils  # noqa: E402
from tool_utils import ToolError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector or segmentor '
        '(default_scope mmdet or mmseg).')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir for logs and the json file of evaluation metrics '
        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        type=str,
        help='detection: dump the predictions to this .pkl file; '
        'segmentation: write the predicted label maps (png) into this '
        'directory')
    parser.add_argument(
        '--show-dir',
        help='paint the predictions on every test image and save them in '
        'this directory (relative paths are relative to the current '
        'directory)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_model/tta_pipeline "
        '(segmentation: multi-scale 0.5-1.75 + flip); detection configs '
        'without them get horizontal flip (boxes only: mmdet cannot merge '
        'instance masks)')
    args = tool_utils.parse_with_common_args(parser, argv)
    return args


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


def build_config(args):
    """Load the config and apply the command line.

    Returns:
        tuple: ``(cfg, scope)``, scope being ``'mmdet'`` or ``'mmseg'``.

    Raises:
        ToolError: for anything the user must fix.
    """
    cfg = Config.fromfile(args.config)
    scope = tool_utils.get_scope(cfg)
    tool_utils.import_libraries(scope)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    tool_utils.set_work_dir(cfg, args.work_dir, args.config)

    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise ToolError(
            f'checkpoint not found: {osp.abspath(args.checkpoint)}')
    cfg.load_from = args.checkpoint

    if args.show_dir:
        hooks = cfg.get('default_hooks') or {}
        if 'visualization' not in hooks:
            raise ToolError(
                '--show-dir needs a visualization hook in default_hooks '
                "(DetVisualizationHook / SegVisualizationHook).")
        show_dir = osp.abspath(args.show_dir)
        hooks.visualization.draw = True
        if scope == 'mmdet':
            # Joined onto work_dir/<timestamp>/ by the hook; absolute stays.
            hooks.visualization.test_out_dir = show_dir
        else:
            # SegVisualizationHook paints every `interval`-th batch (50 by
            # default) into the visualizer's save_dir.
            hooks.visualization.interval = 1
            cfg.visualizer.save_dir = show_dir

    if args.tta:
        if scope == 'mmdet':
            if _has_mask_head(cfg.model):
                raise ToolError(
                    '--tta: mmdet\'s DetTTAModel merges boxes only and '
                    'cannot merge instance masks, so it does not run '
                    'instance-segmentation models such as this one. The '
                    "paper's COCO numbers are single-scale: drop --tta.")
            _default_det_tta(cfg)
        elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ToolError('--tta needs tta_model and tta_pipeline in the '
                            'config (see configs/upernet_swin_s_160k_'
                            'ade20k.py).')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    if args.out is not None and scope == 'mmseg':
        # IoUMetric writes one png per image there.
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    elif args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ToolError(f'--out must be a .pkl file, got {args.out}')

    # Both checks run, so that one message lists everything that is wrong.
    tool_utils.report_problems(
        lambda: tool_utils.check_data(cfg, scope, ['test']),
        lambda: tool_utils.check_checkpoint(args.checkpoint, 'checkpoint'))
    tool_utils.adapt_to_cpu(
        cfg, distributed=args.launcher != 'none', training=False)
    # Evaluating weights that only partly fit the model would report the
    # score of a half-random model; refuse them, listing the keys.
    tool_utils.install_safeguards(
        cfg, training=False, strict_checkpoint=True)
    return cfg, scope


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg, scope = build_config(args)
    except ToolError as e:
        raise SystemExit(f'{osp.basename(__file__)}: error: {e}')

    runner = tool_utils.build_runner(cfg, args.launcher)

    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    from stvit_mm.utils.checkpoint import CheckpointError
    try:
        runner.test()
    except CheckpointError as e:
        raise SystemExit(f'{osp.basename(__file__)}: error: {e}')


if __name__ == '__main__':
    main()
