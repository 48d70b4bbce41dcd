"""Train a detector (mmdet) or a segmentor (mmseg) from a config.

The library is chosen by the config's ``default_scope``. Compared with the
libraries' own ``tools/train.py`` this one also

* imports ``stvit_mm`` (registers ``STViTRSwin``, safe checkpoint loading);
* checks, before anything is built, that the datasets, the evaluator's
  annotation file and local pretrained weights exist, and says how to get
  them when they do not;
* refuses to overwrite another config's checkpoints in ``--work-dir``
  (see ``tool_utils.check_work_dir``);
* runs GPU recipes on machines without CUDA: fp32 instead of
  ``AmpOptimWrapper``/``--amp``, and ``gloo``/BN/CPU-DDP when launched
  distributed (see ``tool_utils.adapt_to_cpu``);
* checks the checkpoint to resume before building anything, writes
  checkpoints atomically (a crash while saving keeps the previous one),
  refuses to resume weights that do not fit the model, never executes a
  config string carried by a checkpoint, and names unreadable images (see
  ``tool_utils.install_safeguards``).

Examples::

    python tools/train.py configs/cascade_stvit_r_swin_s_3x.py
    tools/dist_train.sh configs/upernet_stvit_r_swin_s_160k_ade20k.py 8
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import tool_utils  # noqa: E402
from tool_utils import ToolError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector or segmentor (default_scope mmdet or '
        'mmseg) with an STViT-R-Swin or any other backbone.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir',
        help='the dir to save logs and models (default: '
        'work_dirs/<config name>)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision (ignored, with a warning, on '
        'a machine without CUDA)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size / '
        'auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or without a path from the latest '
        'checkpoint in the work dir')
    args = tool_utils.parse_with_common_args(parser, argv)
    return args


def build_config(args) -> Config:
    """Load the config and apply the command line and this machine's
    limits; raises :class:`ToolError` for anything the user must fix."""
    cfg = Config.fromfile(args.config)
    scope = tool_utils.get_scope(cfg)
    tool_utils.import_libraries(scope)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    tool_utils.set_work_dir(cfg, args.work_dir, args.config)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if ('auto_scale_lr' not in cfg
                or 'enable' not in cfg.auto_scale_lr
                or 'base_batch_size' not in cfg.auto_scale_lr):
            raise ToolError(
                '--auto-scale-lr needs auto_scale_lr = dict(enable=False, '
                'base_batch_size=N) in the config (N: the total batch size '
                'its learning rate was set for).')
        cfg.auto_scale_lr.enable = True

    # --resume: a path, or 'auto' for the work dir's latest checkpoint.
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
        resume_from = tool_utils.auto_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise ToolError(f'--resume: checkpoint not found: '
                            f'{osp.abspath(args.resume)}')
        tool_utils.check_checkpoint(args.resume, '--resume')
        cfg.resume = True
        cfg.load_from = args.resume
        resume_from = args.resume
    else:
        resume_from = None
        load_from = cfg.get('load_from')
        if isinstance(load_from, str) and '://' not in load_from:
            if not osp.isfile(load_from):
                raise ToolError(f'load_from: checkpoint not found: '
                                f'{osp.abspath(load_from)}')
            tool_utils.check_checkpoint(load_from, 'load_from')

    tool_utils.check_work_dir(cfg.work_dir, args.config, args.resume)
    splits = ['train']
    if cfg.get('val_cfg') and cfg.get('val_dataloader') and cfg.get(
            'val_evaluator'):
        splits.append('val')
    # Both checks run, so that one message lists everything that is missing.
    tool_utils.report_problems(
        lambda: tool_utils.check_pretrained(
            cfg, resuming=resume_from is not None),
        lambda: tool_utils.check_data(cfg, scope, splits))
    tool_utils.adapt_to_cpu(
        cfg, distributed=args.launcher != 'none', training=True)
    # Fine-tuning (load_from) may load weights for another head; resuming
    # must continue exactly the model it saved.
    tool_utils.install_safeguards(
        cfg, training=True, strict_checkpoint=bool(cfg.get('resume')))
    return cfg


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except ToolError as e:
        raise SystemExit(f'{osp.basename(__file__)}: error: {e}')

    from stvit_mm.utils.checkpoint import CheckpointError
    runner = tool_utils.build_runner(cfg, args.launcher)
    try:
        runner.train()
    except CheckpointError as e:
        # A checkpoint to resume that is damaged, unsafe or for another
        # model: the user's to fix, like a ToolError.
        raise SystemExit(f'{osp.basename(__file__)}: error: {e}')


if __name__ == '__main__':
    main()
