"""Building mmengine's Runner from a prepared config."""
import torch
from mmengine.config import Config

from .machine import init_cpu_distributed

__all__ = ['build_runner']


def build_runner(cfg: Config, launcher: str):
    """Build the Runner (or the config's ``runner_type``), first starting the
    CPU process group that mmengine cannot start without CUDA.

    A function rather than a Runner subclass, so that a config's own
    ``runner_type`` keeps working and gets the CPU process group too.

    Args:
        cfg (Config): The prepared config.
        launcher (str): ``--launcher``: ``'none'``, ``'pytorch'``,
            ``'slurm'`` or ``'mpi'``.

    Returns:
        mmengine.runner.Runner: The Runner.
    """
    if launcher != 'none' and not torch.cuda.is_available():
        init_cpu_distributed(launcher, cfg.env_cfg.dist_cfg.backend)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
