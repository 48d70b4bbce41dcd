"""Checks of the files a run reads, made before anything is built.

A missing dataset, pretrained file or checkpoint fails within seconds,
with a message that names the path and says how to get or replace it,
instead of deep inside mmengine after the model has been built.
"""
import os
import os.path as osp
from typing import Callable, Iterator, List, Tuple

from mmengine.config import Config

from ..errors import ConfigError
from ..utils.checkpoint import (CheckpointDownloadError, CheckpointError,
                                check_checkpoint_file, fetch_checkpoint)
from .log import warn

__all__ = [
    'check_checkpoint', 'iter_pretrained', 'check_pretrained', 'check_data',
    'report_problems'
]


def is_remote(path: str) -> bool:
    """Whether ``path`` is resolved by mmengine, not the local file system:
    URLs and OpenMMLab's model-zoo prefixes (``torchvision://``,
    ``open-mmlab://``, ``s3://``, ...)."""
    return '://' in path


def check_checkpoint(path: str, what: str) -> None:
    """Fail early, before a model is built, on a local checkpoint that is
    not one, is truncated, or whose pickle would run code (see
    :func:`stvit_mm.utils.checkpoint.check_checkpoint_file`).

    Args:
        path (str): The checkpoint; URLs are left to the loader.
        what (str): Where it comes from, for the message (``'--resume'``).

    Raises:
        ConfigError: ``<what>: <problem>``.
    """
    if is_remote(path):
        return
    try:
        check_checkpoint_file(path)
    except CheckpointError as e:
        raise ConfigError(f'{what}: {e}') from None


def iter_pretrained(node,
                    key: str = 'model') -> Iterator[Tuple[dict, str, str]]:
    """Find the ``Pretrained`` initialisations in a model config.

    Args:
        node: A model config, or a part of it.
        key (str): The dotted key of ``node`` in the config.

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


def _fetch_message(key: str, url: str, error: Exception) -> str:
    name = osp.basename(url.split('?')[0]) or 'the file'
    return (f'{key}.init_cfg.checkpoint: {error}. Without network, download '
            f'{name} elsewhere and point the config at it: --cfg-options '
            f'{key}.init_cfg.checkpoint=/path/to/{name} (the file as '
            'released, or converted with '
            'tools/model_converters/stvit_r_official_to_mm.py)')


def _drop_init_cfg(owner: dict, checkpoint: str) -> None:
    """Remove the ``Pretrained`` entry of ``checkpoint`` from
    ``owner['init_cfg']``."""
    init_cfg = owner['init_cfg']
    if isinstance(init_cfg, (list, tuple)):
        owner['init_cfg'] = [
            c for c in init_cfg
            if not (isinstance(c, dict) and c.get('checkpoint') == checkpoint)
        ] or None
    else:
        owner['init_cfg'] = None


def check_pretrained(cfg: Config, resuming: bool) -> None:
    """Fail early when a ``Pretrained`` init_cfg names a local file that
    does not exist or is not a loadable checkpoint, or an ``http(s)://``
    URL that cannot be downloaded whole (downloaded here into torch's hub
    cache, where the model's loader then finds it).

    When resuming, the weights come from the resumed checkpoint, but
    mmengine still runs ``init_weights`` first; a missing pretrained file is
    then dropped from the config (with a warning) instead of failing.

    Args:
        cfg (Config): The config; ``init_cfg`` entries may be removed.
        resuming (bool): Whether training resumes from a checkpoint that
            exists.

    Raises:
        ConfigError: Listing every missing or damaged file, with how to get
            the official weights or do without them.
    """
    problems = []
    for owner, key, checkpoint in list(iter_pretrained(cfg.model)):
        if checkpoint.startswith(('http://', 'https://')):
            try:
                fetch_checkpoint(checkpoint)
            except CheckpointDownloadError as e:
                if not resuming:
                    problems.append(_fetch_message(key, checkpoint, e))
                    continue
                warn(f'{key}: {e}; not needed when resuming, so it is '
                     'skipped.')
                _drop_init_cfg(owner, checkpoint)
            continue
        if is_remote(checkpoint):
            continue
        if osp.isfile(checkpoint):
            try:
                check_checkpoint(checkpoint, f'{key}.init_cfg.checkpoint')
            except ConfigError as e:
                problems.append(str(e))
            continue
        if resuming:
            warn(f'{key}: pretrained file {checkpoint} is missing; not '
                 'needed when resuming, so it is skipped.')
            _drop_init_cfg(owner, checkpoint)
            continue
        problems.append(_missing_pretrained_message(key, checkpoint))
    if problems:
        raise ConfigError('\n'.join(problems))


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
    if data_root and not osp.isabs(path) and not is_remote(path):
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
    prefixes = dataset_cfg.get('data_prefix') or {}
    if isinstance(prefixes, str):
        prefixes = dict(img_path=prefixes)
    if not prefixes and dataset_cfg.get('split'):
        # mmpretrain's ImageNet reads <data_root>/<split>/ then.
        prefixes = dict(split=dataset_cfg['split'])
    for name, prefix in prefixes.items():
        if isinstance(prefix, str) and prefix:
            paths.append((f'data_prefix.{name}', _join(data_root, prefix),
                          True))
    return [p for p in paths if not is_remote(p[1])]


def _evaluator_paths(evaluator) -> List[Tuple[str, str, bool]]:
    """``(what, path, is_dir)`` for the annotation files of evaluators."""
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    paths = []
    for ev in evaluators:
        ann_file = ev.get('ann_file') if isinstance(ev, dict) else None
        if isinstance(ann_file, str) and ann_file and not is_remote(
                ann_file):
            paths.append(('ann_file', ann_file, False))
    return paths


def _prepare_hint(scope: str, path: str) -> str:
    """How to get the data of ``scope`` that ``path`` belongs to."""
    if 'synthetic' in path:
        kind, target = dict(mmdet=('coco', 'demo'),
                            mmseg=('ade', 'demo-seg'),
                            mmpretrain=('imagenet', 'demo-cls'))[scope]
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
    if scope == 'mmpretrain':
        return ('Expected the ImageNet layout: <data_root>/{train,val}/'
                '<class>/*.JPEG (and optionally <data_root>/meta/{train,val}'
                '.txt, "<path> <label>" per line), as mmpretrain\'s ImageNet '
                'dataset reads it (https://image-net.org/download.php).\n'
                'Link your copy to data/imagenet/, or point the config at '
                'it:\n    --cfg-options train_dataloader.dataset.data_root='
                'DIR val_dataloader.dataset.data_root=DIR '
                'test_dataloader.dataset.data_root=DIR\n'
                'To try the tools without ImageNet: `make demo-cls`.')
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
        scope (str): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``, for the
            preparation hint.
        splits (list[str]): Prefixes of the dataloaders/evaluators to check,
            e.g. ``['train', 'val']``.

    Raises:
        ConfigError: One line per missing path, then how to get the data.
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
    raise ConfigError('Dataset files not found:\n' + '\n'.join(lines) + '\n' +
                      _prepare_hint(scope, missing[0][1]))


def report_problems(*checks: Callable[[], None]) -> None:
    """Run every check, so that one message lists everything to fix.

    Args:
        *checks (Callable[[], None]): Checks raising :class:`ConfigError`.

    Raises:
        ConfigError: All their problems, separated by blank lines.
    """
    problems = []
    for check in checks:
        try:
            check()
        except ConfigError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError('\n\n'.join(problems))
