"""Running GPU recipes on a machine without CUDA.

The paper's recipes assume GPUs: mixed precision, ``nccl``, ``SyncBN``.
Here they are adapted so that the same configs train and test on CPUs, in
one process or distributed over several.
"""
import os
import subprocess

import torch
from mmengine.config import Config, ConfigDict

from ..errors import ConfigError
from .config import replace_types
from .log import warn

__all__ = ['adapt_to_cpu', 'init_cpu_distributed']


def _replace_sync_bn(node) -> int:
    """Turn every ``SyncBN`` norm config under ``node`` into ``BN`` in place
    (``SyncBN`` needs a CUDA process group); returns how many."""
    return replace_types(
        node, lambda n: n.get('type') in ('SyncBN', 'MMSyncBN'), 'BN')


def adapt_to_cpu(cfg: Config, distributed: bool, training: bool) -> None:
    """Make a GPU recipe runnable on a machine without CUDA.

    Nothing changes when CUDA is available. Otherwise:

    * ``AmpOptimWrapper`` (the COCO recipe, or ``--amp``) asserts without a
      GPU, so it becomes a plain fp32 ``OptimWrapper``.
    * Distributed runs use the ``gloo`` backend (``nccl`` needs GPUs);
      ``SyncBN``, whose synchronisation is implemented for GPUs only, becomes
      per-process ``BN``; and DDP gets ``device_ids=None``, because mmengine
      passes ``[LOCAL_RANK]``, which torch refuses for a CPU module.
      Non-distributed runs need no SyncBN change: mmengine reverts SyncBN to
      BN itself then.

    Args:
        cfg (Config): The config, changed in place.
        distributed (bool): Whether ``--launcher`` is not ``none``.
        training (bool): Whether the optimizer will be built.
    """
    if torch.cuda.is_available():
        return
    optim_wrapper = cfg.get('optim_wrapper')
    if (training and isinstance(optim_wrapper, dict)
            and optim_wrapper.get('type') == 'AmpOptimWrapper'):
        optim_wrapper['type'] = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            optim_wrapper.pop(key, None)
        warn('No CUDA device: AmpOptimWrapper (mixed precision) needs a GPU, '
             'so this run trains in fp32 with OptimWrapper. Results and '
             'memory use differ from the GPU recipe.')
    if not distributed:
        return
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    if cfg.env_cfg.dist_cfg.get('backend') != 'gloo':
        warn(f'No CUDA device: distributed backend '
             f'{cfg.env_cfg.dist_cfg.get("backend")!r} -> \'gloo\'.')
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    if _replace_sync_bn(cfg.model):
        warn('No CUDA device: SyncBN cannot synchronise on CPU, so every '
             'process normalises its own batch (BN).')
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def init_cpu_distributed(launcher: str, backend: str = 'gloo') -> None:
    """Join the process group on a machine without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device(local_rank)``
    first, which raises on a CPU-only torch build, so the group is
    initialised here instead (the Runner then finds it initialised and
    skips its own). Rank and world size come from the launcher's
    environment, as mmengine reads them.

    Args:
        launcher (str): ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        backend (str): The process-group backend. Defaults to ``'gloo'``.

    Raises:
        ConfigError: For another launcher.
    """
    import torch.distributed as dist
    if dist.is_initialized():
        return
    env = os.environ
    if launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in env:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0')
        env.setdefault('MASTER_ADDR', '127.0.0.1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher != 'pytorch':
        raise ConfigError(f'unknown launcher {launcher!r}')
    dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']))
