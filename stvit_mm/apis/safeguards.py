"""Wiring ``stvit_mm.engine``'s safeguards into every config that is run."""
from typing import Tuple

from mmengine.config import Config, ConfigDict

from .config import replace_types
from .log import warn

__all__ = ['install_safeguards']

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
    ``TestTimeAug`` included).

    Returns:
        int: How many were replaced.
    """
    from mmcv.transforms import LoadImageFromFile
    return replace_types(
        node, lambda n: _is_type(n, _STOCK_IMAGE_LOADERS, LoadImageFromFile),
        'CheckedLoadImageFromFile')


def _guard_checkpoints(cfg: Config, strict_checkpoint: bool) -> None:
    """Add ``CheckpointGuardHook`` to ``custom_hooks``, or make the
    config's own one strict when ``strict_checkpoint``."""
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


def _save_atomically(cfg: Config) -> None:
    """Use ``AtomicCheckpointHook`` for mmengine's ``CheckpointHook``."""
    from mmengine.hooks import CheckpointHook
    cfg.setdefault('default_hooks', ConfigDict())
    hooks = cfg.default_hooks
    if 'checkpoint' not in hooks:
        # The hook and interval mmengine's Runner adds by default.
        hooks.checkpoint = ConfigDict(type='AtomicCheckpointHook', interval=1)
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
    _guard_checkpoints(cfg, strict_checkpoint)
    if training:
        _save_atomically(cfg)
    imports = cfg.get('custom_imports') or ConfigDict(
        imports=[], allow_failed_imports=False)
    modules = imports.get('imports') or []
    modules = [modules] if isinstance(modules, str) else list(modules)
    if 'stvit_mm.engine' not in modules:
        modules.append('stvit_mm.engine')
    imports['imports'] = modules
    cfg.custom_imports = imports
