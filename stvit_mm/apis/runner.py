"""Building mmengine's Runner from a prepared config, and leaving the
process group cleanly after a distributed run."""
import torch
from mmengine.config import Config

from .machine import init_cpu_distributed

__all__ = ['build_runner', 'close_distributed']


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


def close_distributed() -> None:
    """Leave the process group, if one was started, once the run is over.

    mmengine never destroys the group. Left to the interpreter's exit,
    gloo's worker threads are torn down in no fixed order and a rank now
    and then dies with ``terminate called without an active exception``
    (SIGABRT) after its work is done, failing the whole launch. The
    barrier makes sure no rank leaves while another still talks to it.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
