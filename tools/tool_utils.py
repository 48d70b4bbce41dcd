"""Checks and adjustments shared by ``tools/train.py`` and ``tools/test.py``.

Everything here works on the loaded :class:`mmengine.config.Config` before
the Runner is built, so a missing file or a setting this machine cannot run
fails within seconds, with a message that says what to do, instead of deep
inside mmengine after the model has been built.
"""
import argparse
import glob
import logging
import os
import os.path as osp
import subprocess
from typing import Callable, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

SCOPES = ('mmdet', 'mmseg')


class ToolError(Exception):
    """A problem the user has to fix; the tools print it without a
    traceback."""


def parse_with_common_args(parser: argparse.ArgumentParser,
                           argv=None) -> argparse.Namespace:
    """Add the options train.py and test.py share (``--cfg-options``,
    ``--launcher``, ``--local_rank``) and parse.

    Args:
        parser (argparse.ArgumentParser): The tool's own parser.
        argv (list[str], optional): Arguments; ``sys.argv`` when None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs such as '
        'model.backbone.init_cfg=None or train_cfg.max_iters=100; lists as '
        'key="[a,b]" or key=a,b, nested as key="[(a,b),(c,d)]", no spaces')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def warn(msg: str) -> None:
    """Print a warning through mmengine's current logger (the Runner's log
    does not exist yet when the tools adjust the config)."""
    print_log(msg, logger='current', level=logging.WARNING)


def get_scope(cfg: Config) -> str:
    """The OpenMMLab library a config belongs to, from its ``default_scope``.

    Args:
        cfg (Config): The loaded config.

    Returns:
        str: ``'mmdet'`` or ``'mmseg'``.
    """
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ToolError(
            f'{cfg.filename}: default_scope is {scope!r}; these tools serve '
            f'detection (mmdet) and segmentation (mmseg) configs only. '
            'Inherit an mmdet or mmseg config (`_base_`) or set '
            "default_scope = 'mmdet' / 'mmseg'.")
    return scope


def import_libraries(scope: str) -> None:
    """Import stvit_mm (registers ``STViTRSwin`` in every library's
    ``MODELS`` and makes checkpoint loading work on torch >= 2.6), its
    safeguards (``stvit_mm.engine``, see :func:`install_safeguards`) and the
    library that runs the config."""
    import stvit_mm  # noqa: F401
    import stvit_mm.engine  # noqa: F401
    if scope == 'mmdet':
        import mmdet  # noqa: F401
    else:
        import mmseg  # noqa: F401


def set_work_dir(cfg: Config, work_dir: Optional[str],
                 config_path: str) -> None:
    """``--work-dir`` > ``work_dir`` in the config > ``work_dirs/<config>``,
    the OpenMMLab rule."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


# ---------------------------------------------------------------------------
# Machines without a GPU
# ---------------------------------------------------------------------------
def _replace_sync_bn(node) -> int:
    """Turn every ``SyncBN`` norm config under ``node`` into ``BN`` in place;
    returns how many were changed."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_bn(value)
    return count


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
        raise ToolError(f'unknown launcher {launcher!r}')
    dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']))


# ---------------------------------------------------------------------------
# Files the run needs
# ---------------------------------------------------------------------------
def build_runner(cfg: Config, launcher: str):
    """Build the Runner (or the config's ``runner_type``), first starting the
    CPU process group that mmengine cannot start without CUDA.

    Args:
        cfg (Config): The prepared config.
        launcher (str): ``--launcher``.

    Returns:
        The Runner.
    """
    if launcher != 'none' and not torch.cuda.is_available():
        init_cpu_distributed(launcher, cfg.env_cfg.dist_cfg.backend)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def _is_remote(path: str) -> bool:
    # URLs and OpenMMLab's model-zoo prefixes (torchvision://, open-mmlab://,
    # s3://, ...) are resolved by mmengine, not the local file system.
    return '://' in path


def iter_pretrained(node,
                    key: str = 'model') -> Iterator[Tuple[dict, str, str]]:
    """Find the ``Pretrained`` initialisations in a model config.

    Yields:
        tuple: ``(owner, key, checkpoint)``: the dict holding ``init_cfg``,
        its dotted key in the config, and the checkpoint path.
    """
    if isinstance(node, dict):
        init_cfgs = node.get('init_cfg')
        if not isinstance(init_cfgs, (list, tuple)):
            init_cfgs = [init_cfgs]
        for init_cfg in init_cfgs:
            if (isinstance(init_cfg, dict)
                    and init_cfg.get('type') == 'Pretrained'
                    and isinstance(init_cfg.get('checkpoint'), str)):
                yield node, key, init_cfg['checkpoint']
        for name, value in node.items():
            if name != 'init_cfg':
                yield from iter_pretrained(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from iter_pretrained(value, f'{key}.{index}')


_OFFICIAL_NAMES = {
    'stvit_r_swin_s': 'STViT-R-Swin-S.pth',
    'stvit_r_swin_b': 'STViT-R-Swin-B.pth',
}


def _missing_pretrained_message(key: str, checkpoint: str) -> str:
    lines = [
        f'Pretrained weights not found: {osp.abspath(checkpoint)}',
        f'  ({key}.init_cfg.checkpoint = {checkpoint!r}). Either']
    official = next((name for prefix, name in _OFFICIAL_NAMES.items()
                     if osp.basename(checkpoint).startswith(prefix)), None)
    if official is not None:
        lines += [
            f'  - download the official ImageNet-1k release {official} '
            '(linked from https://github.com/changsn/STViT-R) and convert '
            'it into that path:',
            '      python tools/model_converters/stvit_r_official_to_mm.py '
            f'{official} {checkpoint}',
        ]
    lines += [
        '  - or use another file: --cfg-options '
        f'{key}.init_cfg.checkpoint=PATH',
        f'  - or train from scratch: --cfg-options {key}.init_cfg=None',
    ]
    return '\n'.join(lines)


def check_checkpoint(path: str, what: str) -> None:
    """Fail early, before a model is built, on a local checkpoint that is
    not one, is truncated, or whose pickle would run code (see
    :func:`stvit_mm.utils.checkpoint.check_checkpoint_file`).

    Args:
        path (str): The checkpoint; URLs are left to the loader.
        what (str): Where it comes from, for the message (``'--resume'``).
    """
    if _is_remote(path):
        return
    from stvit_mm.utils.checkpoint import (CheckpointError,
                                           check_checkpoint_file)
    try:
        check_checkpoint_file(path)
    except CheckpointError as e:
        raise ToolError(f'{what}: {e}') from None


def check_pretrained(cfg: Config, resuming: bool) -> None:
    """Fail early when a ``Pretrained`` init_cfg names a local file that
    does not exist or is not a loadable checkpoint.

    When resuming, the weights come from the resumed checkpoint, but
    mmengine still runs ``init_weights`` first; a missing pretrained file is
    then dropped from the config (with a warning) instead of failing.

    Args:
        cfg (Config): The config; ``init_cfg`` entries may be removed.
        resuming (bool): Whether training resumes from a checkpoint that
            exists.
    """
    problems = []
    for owner, key, checkpoint in list(iter_pretrained(cfg.model)):
        if _is_remote(checkpoint):
            continue
        if osp.isfile(checkpoint):
            try:
                check_checkpoint(checkpoint, f'{key}.init_cfg.checkpoint')
            except ToolError as e:
                problems.append(str(e))
            continue
        if resuming:
            warn(f'{key}: pretrained file {checkpoint} is missing; not '
                 'needed when resuming, so it is skipped.')
            init_cfg = owner['init_cfg']
            if isinstance(init_cfg, (list, tuple)):
                owner['init_cfg'] = [
                    c for c in init_cfg
                    if not (isinstance(c, dict)
                            and c.get('checkpoint') == checkpoint)
                ] or None
            else:
                owner['init_cfg'] = None
            continue
        problems.append(_missing_pretrained_message(key, checkpoint))
    if problems:
        raise ToolError('\n'.join(problems))


def _iter_leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """Leaf dataset configs under wrappers (RepeatDataset, ConcatDataset,
    ClassBalancedDataset, MultiImageMixDataset, ...)."""
    if not isinstance(dataset_cfg, dict):
        return
    if 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from _iter_leaf_datasets(sub)
    elif 'dataset' in dataset_cfg:
        yield from _iter_leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def _join(data_root: str, path: str) -> str:
    # mmengine's BaseDataset joins relative ann_file / data_prefix entries
    # onto data_root the same way.
    if data_root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(data_root, path)
    return path


def _dataset_paths(dataset_cfg: dict) -> List[Tuple[str, str, bool]]:
    """``(what, path, is_dir)`` for every local path a dataset reads."""
    data_root = dataset_cfg.get('data_root') or ''
    paths = []
    if data_root:
        paths.append(('data_root', data_root, True))
    ann_file = dataset_cfg.get('ann_file') or ''
    if ann_file:
        paths.append(('ann_file', _join(data_root, ann_file), False))
    for name, prefix in (dataset_cfg.get('data_prefix') or {}).items():
        if isinstance(prefix, str) and prefix:
            paths.append((f'data_prefix.{name}', _join(data_root, prefix),
                          True))
    return [p for p in paths if not _is_remote(p[1])]


def _evaluator_paths(evaluator) -> List[Tuple[str, str, bool]]:
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    paths = []
    for ev in evaluators:
        ann_file = ev.get('ann_file') if isinstance(ev, dict) else None
        if isinstance(ann_file, str) and ann_file and not _is_remote(
                ann_file):
            paths.append(('ann_file', ann_file, False))
    return paths


def _prepare_hint(scope: str, path: str) -> str:
    if 'synthetic' in path:
        kind, target = ('coco', 'demo') if scope == 'mmdet' else ('ade',
                                                                  'demo-seg')
        out = osp.relpath(path) if not osp.relpath(path).startswith(
            '..') else osp.abspath(path)
        return ('This is the synthetic shapes set of the CPU demo. Generate '
                f'it with\n    python tools/dataset_converters/'
                f'make_synthetic_data.py {kind} --out {out}'
                f'\nor run the whole demo (data, training, test): '
                f'`make {target}`.')
    if scope == 'mmdet':
        return ('Expected the COCO layout: <data_root>/annotations/'
                'instances_{train,val}2017.json, images in <data_root>/'
                '{train,val}2017/ (https://cocodataset.org/#download).\n'
                'Link your copy to data/coco/, or point the config at it:\n'
                '    --cfg-options train_dataloader.dataset.data_root=DIR/ '
                'val_dataloader.dataset.data_root=DIR/ '
                'test_dataloader.dataset.data_root=DIR/ '
                'val_evaluator.ann_file=DIR/annotations/'
                'instances_val2017.json test_evaluator.ann_file=DIR/'
                'annotations/instances_val2017.json\n'
                '(the evaluators keep their own path). To try the tools '
                'without COCO: `make demo`.')
    return ('Expected the ADE20K layout: <data_root>/images/{training,'
            'validation}/*.jpg and <data_root>/annotations/{training,'
            'validation}/*.png, i.e. ADEChallengeData2016.zip '
            '(http://data.csail.mit.edu/places/ADEchallenge/) unzipped into '
            'data/ade/.\nOr point the config at your copy:\n'
            '    --cfg-options train_dataloader.dataset.data_root=DIR '
            'val_dataloader.dataset.data_root=DIR '
            'test_dataloader.dataset.data_root=DIR\n'
            'To try the tools without ADE20K: `make demo-seg`.')


def check_data(cfg: Config, scope: str, splits: List[str]) -> None:
    """Fail early, naming the path, when a dataset or evaluator file the run
    reads does not exist.

    Args:
        cfg (Config): The config.
        scope (str): ``'mmdet'`` or ``'mmseg'``, for the preparation hint.
        splits (list[str]): Prefixes of the dataloaders/evaluators to check,
            e.g. ``['train', 'val']``.
    """
    missing = []
    for split in splits:
        entries = []
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            for dataset_cfg in _iter_leaf_datasets(loader.get('dataset')):
                entries += [(f'{split}_dataloader dataset {what}', path, d)
                            for what, path, d in _dataset_paths(dataset_cfg)]
        entries += [(f'{split}_evaluator {what}', path, d) for what, path, d
                    in _evaluator_paths(cfg.get(f'{split}_evaluator'))]
        for what, path, is_dir in entries:
            if not (osp.isdir(path) if is_dir else osp.isfile(path)):
                missing.append((what, path))
    if not missing:
        return
    # One line per missing path (val and test often share theirs).
    seen, lines = set(), []
    for what, path in missing:
        path = osp.normpath(path)
        # Under a missing data_root everything is missing; name the root only.
        if any(path == s or path.startswith(s + os.sep) for s in seen):
            continue
        seen.add(path)
        lines.append(f'  {osp.abspath(path)}  ({what})')
    raise ToolError('Dataset files not found:\n' + '\n'.join(lines) + '\n' +
                    _prepare_hint(scope, missing[0][1]))


def report_problems(*checks: Callable[[], None]) -> None:
    """Run every check and raise one :class:`ToolError` listing all their
    problems."""
    problems = []
    for check in checks:
        try:
            check()
        except ToolError as e:
            problems.append(str(e))
    if problems:
        raise ToolError('\n\n'.join(problems))


# ---------------------------------------------------------------------------
# Work directory
# ---------------------------------------------------------------------------
def existing_checkpoints(work_dir: str) -> List[str]:
    """Checkpoint files mmengine's CheckpointHook left in ``work_dir``."""
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
    raise ToolError(
        f'{osp.abspath(work_dir)} already holds checkpoints of {owner} '
        f'({", ".join(osp.basename(c) for c in checkpoints)}); '
        f'{"resuming" if resume else "training"} {mine} there would '
        f'{"load" if resume else "overwrite"} them. Choose a new --work-dir '
        '(or remove those checkpoints). To continue a run, pass its '
        'checkpoint explicitly: --resume PATH.')


def auto_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a bare ``--resume`` will load (mmengine reads
    ``work_dir/last_checkpoint``), checked like any other.

    Returns:
        str | None: Its path, or None when the work dir has no
        ``last_checkpoint`` (the run then starts from scratch).

    Raises:
        ToolError: ``last_checkpoint`` names a file that is missing or
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
            raise ToolError(f'{marker} is empty.')
        if not osp.isfile(path):
            raise ToolError(f'{marker} names {path}, which does not exist.')
        check_checkpoint(path, marker)
        return path
    except ToolError as e:
        problem = str(e)
    intact = []
    for candidate in sorted(
            glob.glob(osp.join(work_dir, '*.pth')),
            key=osp.getmtime,
            reverse=True):
        try:
            check_checkpoint(candidate, candidate)
        except ToolError:
            continue
        intact.append(candidate)
    advice = ('Resume one of the intact checkpoints explicitly, newest '
              'first:\n' + '\n'.join(f'    --resume {c}' for c in intact)
              if intact else
              'The work dir holds no intact checkpoint to resume; train '
              'without --resume.')
    raise ToolError(f'--resume: {problem}\n{advice}')


# ---------------------------------------------------------------------------
# Safeguards wired into every config
# ---------------------------------------------------------------------------
_STOCK_IMAGE_LOADERS = ('LoadImageFromFile', 'mmcv.LoadImageFromFile')
_STOCK_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')


def _is_type(node: dict, names: Tuple[str, ...], cls: type) -> bool:
    # Configs name types by string, or, in mmengine's pure-Python configs,
    # by the class itself. Subclasses are someone's deliberate choice: kept.
    kind = node.get('type')
    return kind in names if isinstance(kind, str) else kind is cls


def _use_checked_image_loading(node) -> int:
    """Replace mmcv's ``LoadImageFromFile`` by ``CheckedLoadImageFromFile``
    anywhere under ``node`` (pipelines of wrapped datasets and
    ``TestTimeAug`` included); returns how many were replaced."""
    from mmcv.transforms import LoadImageFromFile
    count = 0
    if isinstance(node, dict):
        if _is_type(node, _STOCK_IMAGE_LOADERS, LoadImageFromFile):
            node['type'] = 'CheckedLoadImageFromFile'
            count += 1
        for value in node.values():
            count += _use_checked_image_loading(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _use_checked_image_loading(value)
    return count


def install_safeguards(cfg: Config, training: bool,
                       strict_checkpoint: bool) -> None:
    """Wire ``stvit_mm.engine``'s safeguards into a config, so that every
    config run by the tools gets them without having to ask:

    * ``CheckedLoadImageFromFile`` for mmcv's ``LoadImageFromFile`` in every
      dataloader: an unreadable image fails with its file name;
    * ``CheckpointGuardHook`` in ``custom_hooks``: a loaded checkpoint's
      ``meta['config']``, which ``Runner.resume`` would execute, is dropped,
      and with ``strict_checkpoint`` weights that do not fit the model are
      refused with the list of mismatched keys;
    * for training, ``AtomicCheckpointHook`` for mmengine's
      ``CheckpointHook``: a crash while saving never destroys the previous
      checkpoint or leaves ``last_checkpoint`` pointing at a broken file;
    * ``stvit_mm.engine`` in ``custom_imports``, so that the config the
      Runner dumps into the work dir builds again.

    Args:
        cfg (Config): The config, changed in place.
        training (bool): Whether checkpoints will be saved.
        strict_checkpoint (bool): Whether the checkpoint loaded by the
            Runner must fit the model exactly (testing, resuming).
    """
    for split in ('train', 'val', 'test'):
        _use_checked_image_loading(cfg.get(f'{split}_dataloader'))

    custom_hooks = list(cfg.get('custom_hooks') or [])
    guards = [
        h for h in custom_hooks
        if isinstance(h, dict) and h.get('type') == 'CheckpointGuardHook'
    ]
    if guards:
        for guard in guards:
            guard['strict'] = guard.get('strict', False) or strict_checkpoint
    else:
        custom_hooks.append(
            ConfigDict(type='CheckpointGuardHook', strict=strict_checkpoint))
    cfg.custom_hooks = custom_hooks

    if training:
        from mmengine.hooks import CheckpointHook
        cfg.setdefault('default_hooks', ConfigDict())
        hooks = cfg.default_hooks
        if 'checkpoint' not in hooks:
            # The hook and interval mmengine's Runner adds by default.
            hooks.checkpoint = ConfigDict(
                type='AtomicCheckpointHook', interval=1)
        elif isinstance(hooks.checkpoint, dict) and _is_type(
                hooks.checkpoint, _STOCK_CHECKPOINT_HOOKS, CheckpointHook):
            hooks.checkpoint['type'] = 'AtomicCheckpointHook'
        elif hooks.checkpoint is not None:
            kind = (hooks.checkpoint.get('type') if isinstance(
                hooks.checkpoint, dict) else type(hooks.checkpoint).__name__)
            if kind != 'AtomicCheckpointHook':
                warn(f'default_hooks.checkpoint is {kind}, not mmengine\'s '
                     'CheckpointHook, so it is kept, and its checkpoints are '
                     'not written atomically (a crash while saving can '
                     'leave a truncated file).')

    imports = cfg.get('custom_imports') or ConfigDict(
        imports=[], allow_failed_imports=False)
    modules = imports.get('imports') or []
    modules = [modules] if isinstance(modules, str) else list(modules)
    if 'stvit_mm.engine' not in modules:
        modules.append('stvit_mm.engine')
    imports['imports'] = modules
    cfg.custom_imports = imports
