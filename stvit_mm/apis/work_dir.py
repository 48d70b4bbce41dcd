"""The work directory: where it is, whose checkpoints it holds, and which
one a bare ``--resume`` continues."""
import glob
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

from ..errors import ConfigError
from .config import get_scope, load_config
from .log import warn
from .preflight import check_checkpoint

__all__ = [
    'load_run_config',
    'set_work_dir', 'existing_checkpoints', 'check_work_dir',
    'auto_resume_checkpoint'
]


def set_work_dir(cfg: Config, work_dir: Optional[str],
                 config_path: str) -> None:
    """Set ``cfg.work_dir`` by the OpenMMLab rule: ``--work-dir`` >
    ``work_dir`` in the config > ``work_dirs/<config name>``.

    Args:
        cfg (Config): The config, changed in place.
        work_dir (str, optional): ``--work-dir``.
        config_path (str): The config file.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def load_run_config(config: str, work_dir: Optional[str],
                    cfg_options: Optional[dict], launcher: str):
    """The config of a train or test run: loaded with its library,
    ``--cfg-options`` applied, launcher and work dir set.

    Returns:
        tuple[Config, str]: The config and its ``default_scope``.
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    set_work_dir(cfg, work_dir, config)
    return cfg, get_scope(cfg)


def existing_checkpoints(work_dir: str) -> List[str]:
    """Checkpoint files mmengine's CheckpointHook left in ``work_dir``.

    Args:
        work_dir (str): The work directory.

    Returns:
        list[str]: The ``*.pth`` files, then ``last_checkpoint`` if any.
    """
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        found.append(osp.join(work_dir, 'last_checkpoint'))
    return found


def check_work_dir(work_dir: str, config_path: str, resume) -> None:
    """Do not let a training run overwrite another config's checkpoints.

    mmengine writes each run's logs into a new timestamped sub-directory, but
    checkpoints (``epoch_N.pth``/``iter_N.pth``, ``last_checkpoint``) go
    straight into ``work_dir`` and are overwritten without notice, and a
    bare ``--resume`` would pick up whatever the directory holds. The Runner
    dumps the config it ran into ``work_dir/<config file name>``, which tells
    which config the checkpoints belong to:

    * no checkpoints, or an explicit ``--resume CKPT``: nothing to check;
    * checkpoints of this same config only: a warning (a rerun overwrites
      them as it reaches the same epochs; ``--resume`` continues instead),
      nothing for ``--resume``;
    * checkpoints of another config, or of one that cannot be told: refused,
      with or without a bare ``--resume``.

    Args:
        work_dir (str): The run's work directory.
        config_path (str): The config file being run.
        resume (str | None): ``None``, ``'auto'`` (bare ``--resume``) or a
            checkpoint path.

    Raises:
        ConfigError: The work dir holds another run's checkpoints.
    """
    if resume not in (None, 'auto') or not osp.isdir(work_dir):
        return
    checkpoints = existing_checkpoints(work_dir)
    if not checkpoints:
        return
    mine = osp.basename(config_path)
    dumped = {osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.py'))}
    others = sorted(dumped - {mine})
    if mine in dumped and not others:
        if resume is None:
            warn(f'{work_dir} holds checkpoints of an earlier run of {mine} '
                 f'({", ".join(osp.basename(c) for c in checkpoints)}); this '
                 'run overwrites them as it reaches the same '
                 'epochs/iterations. Pass --resume to continue that run '
                 'instead.')
        return
    owner = (f'config {", ".join(others)}' if others else
             'a run whose config is not in that directory')
    raise ConfigError(
        f'{osp.abspath(work_dir)} already holds checkpoints of {owner} '
        f'({", ".join(osp.basename(c) for c in checkpoints)}); '
        f'{"resuming" if resume else "training"} {mine} there would '
        f'{"load" if resume else "overwrite"} them. Choose a new --work-dir '
        '(or remove those checkpoints). To continue a run, pass its '
        'checkpoint explicitly: --resume PATH.')


def auto_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a bare ``--resume`` will load (mmengine reads
    ``work_dir/last_checkpoint``), checked like any other.

    Args:
        work_dir (str): The work directory.

    Returns:
        str | None: Its path, or None when the work dir has no
        ``last_checkpoint`` (the run then starts from scratch).

    Raises:
        ConfigError: ``last_checkpoint`` names a file that is missing or
            damaged (possible with mmengine's own CheckpointHook after a
            crash while saving); the message lists the checkpoints in the
            work dir that can be resumed explicitly instead.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    try:
        if not path:
            raise ConfigError(f'{marker} is empty.')
        if not osp.isfile(path):
            raise ConfigError(
                f'{marker} names {path}, which does not exist.')
        check_checkpoint(path, marker)
        return path
    except ConfigError as e:
        problem = str(e)
    intact = []
    for candidate in sorted(
            glob.glob(osp.join(work_dir, '*.pth')),
            key=osp.getmtime,
            reverse=True):
        try:
            check_checkpoint(candidate, candidate)
        except ConfigError:
            continue
        intact.append(candidate)
    advice = ('Resume one of the intact checkpoints explicitly, newest '
              'first:\n' + '\n'.join(f'    --resume {c}' for c in intact)
              if intact else
              'The work dir holds no intact checkpoint to resume; train '
              'without --resume.')
    raise ConfigError(f'--resume: {problem}\n{advice}')
