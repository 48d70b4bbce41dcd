"""Training a detector (mmdet) or a segmentor (mmseg) from a config: what
``tools/train.py`` does.

The library is chosen by the config's ``default_scope``. Compared with the
libraries' own ``tools/train.py`` this also

* imports ``stvit_mm`` (registers ``STViTRSwin``, safe checkpoint loading);
* checks, before anything is built, that the datasets, the evaluator's
  annotation file and local pretrained weights exist, and says how to get
  them when they do not (:mod:`.preflight`);
* refuses to overwrite another config's checkpoints in the work dir
  (:func:`.work_dir.check_work_dir`);
* runs GPU recipes on machines without CUDA: fp32 instead of
  ``AmpOptimWrapper``/``--amp``, and ``gloo``/BN/CPU-DDP when launched
  distributed (:func:`.machine.adapt_to_cpu`);
* checks the checkpoint to resume before building anything, writes
  checkpoints atomically (a crash while saving keeps the previous one),
  refuses to resume weights that do not fit the model, never executes a
  config string carried by a checkpoint, and names unreadable images
  (:func:`.safeguards.install_safeguards`).
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..errors import ConfigError
from .machine import adapt_to_cpu
from .preflight import (check_checkpoint, check_data, check_pretrained,
                        report_problems)
from .runner import build_runner, close_distributed
from .safeguards import install_safeguards
from .work_dir import (auto_resume_checkpoint, check_work_dir,
                       load_run_config)

__all__ = ['build_train_config', 'run_train']


def _apply_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Set up ``--resume`` (a path, or ``'auto'`` for the work dir's latest
    checkpoint) or check ``load_from``.

    Returns:
        str | None: The checkpoint training resumes from, if any.
    """
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
        return auto_resume_checkpoint(cfg.work_dir)
    if resume is not None:
        if not osp.isfile(resume):
            raise ConfigError(f'--resume: checkpoint not found: '
                              f'{osp.abspath(resume)}')
        check_checkpoint(resume, '--resume')
        cfg.resume = True
        cfg.load_from = resume
        return resume
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and '://' not in load_from:
        if not osp.isfile(load_from):
            raise ConfigError(f'load_from: checkpoint not found: '
                              f'{osp.abspath(load_from)}')
        check_checkpoint(load_from, 'load_from')
    return None


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       amp: bool = False,
                       auto_scale_lr: bool = False,
                       resume: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Config:
    """Load a config for training and apply the command line and this
    machine's limits, checking every file the run needs.

    Args:
        config (str): The config file.
        work_dir (str, optional): ``--work-dir``; by default the config's,
            else ``work_dirs/<config name>``.
        amp (bool): ``--amp``: mixed precision (fp32 without CUDA).
        auto_scale_lr (bool): ``--auto-scale-lr``: scale the learning rate
            by the total batch size.
        resume (str, optional): ``--resume``: a checkpoint, or ``'auto'``
            for the work dir's latest one.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        launcher (str): ``--launcher``. Defaults to ``'none'``.

    Returns:
        Config: The config to build the Runner from.

    Raises:
        ConfigError: For anything the user must fix; missing data and
            pretrained files are reported together.
    """
    cfg, scope = load_run_config(config, work_dir, cfg_options, launcher)

    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if auto_scale_lr:
        if ('auto_scale_lr' not in cfg
                or 'enable' not in cfg.auto_scale_lr
                or 'base_batch_size' not in cfg.auto_scale_lr):
            raise ConfigError(
                '--auto-scale-lr needs auto_scale_lr = dict(enable=False, '
                'base_batch_size=N) in the config (N: the total batch size '
                'its learning rate was set for).')
        cfg.auto_scale_lr.enable = True

    resume_from = _apply_resume(cfg, resume)
    check_work_dir(cfg.work_dir, config, resume)
    splits = ['train']
    if cfg.get('val_cfg') and cfg.get('val_dataloader') and cfg.get(
            'val_evaluator'):
        splits.append('val')
    # Both checks run, so that one message lists everything that is missing.
    report_problems(
        lambda: check_pretrained(cfg, resuming=resume_from is not None),
        lambda: check_data(cfg, scope, splits))
    adapt_to_cpu(cfg, distributed=launcher != 'none', training=True)
    # Fine-tuning (load_from) may load weights for another head; resuming
    # must continue exactly the model it saved.
    install_safeguards(
        cfg, training=True, strict_checkpoint=bool(cfg.get('resume')))
    return cfg


def run_train(config: str, launcher: str = 'none', **options):
    """Train from a config: :func:`build_train_config`, then the Runner.

    Args:
        config (str): The config file.
        launcher (str): ``--launcher``. Defaults to ``'none'``.
        **options: The other arguments of :func:`build_train_config`
            (``work_dir``, ``amp``, ``auto_scale_lr``, ``resume``,
            ``cfg_options``).

    Returns:
        mmengine.runner.Runner: The Runner, after training.

    Raises:
        ConfigError: As :func:`build_train_config`, before anything is
            built.
        CheckpointError: The checkpoint to resume is damaged, unsafe or
            for another model.
    """
    cfg = build_train_config(config, launcher=launcher, **options)
    runner = build_runner(cfg, launcher)
    runner.train()
    close_distributed()
    return runner
