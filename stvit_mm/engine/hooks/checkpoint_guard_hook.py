"""Checks every checkpoint the Runner loads before the Runner uses it."""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS

from stvit_mm.utils.checkpoint import check_state_dict_fits
from stvit_mm.utils.compat import runner_checkpoint_source

__all__ = ['CheckpointGuardHook']


@HOOKS.register_module()
class CheckpointGuardHook(Hook):
    """Inspects checkpoints loaded by the Runner (``load_from``, resume).

    ``Runner.load_checkpoint`` calls ``after_load_checkpoint`` with the
    loaded dict right after reading the file and before using it, which is
    where this hook steps in:

    * **Config strings are dropped.** ``Runner.resume`` (mmengine 0.10.7)
      parses ``meta['config']`` with ``Config.fromstring(...,
      file_format='.py')``, which *executes* it as Python, just to read
      ``gpu_ids``. The Runner itself writes its config under ``meta['cfg']``
      and never writes ``meta['config']`` (mmcv 1.x runners did), so any
      such string comes from elsewhere and would let a checkpoint run code
      on ``--resume``, the loader's weights-only unpickling
      notwithstanding. It is removed, with a warning.
    * **With** ``strict=True`` **the weights must fit the model**: the
      missing, unexpected and mis-shaped keys are listed in a
      :class:`~stvit_mm.utils.checkpoint.CheckpointMismatchError` instead of
      mmengine's warning (``Runner.load_checkpoint`` loads with
      ``strict=False``, leaving the unmatched layers randomly initialised).
      ``tools/test.py`` and ``tools/train.py --resume`` set it; training with
      ``load_from`` does not, since fine-tuning a checkpoint for another
      class count is what ``load_from`` is for.

    Args:
        strict (bool): Refuse checkpoints that do not fit the model.
            Defaults to False.
    """
    # Before any other hook (EMAHook, ...) looks at the checkpoint.
    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = False):
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if isinstance(meta, dict) and 'config' in meta:
            meta.pop('config')
            print_log(
                "Dropped meta['config'] from the loaded checkpoint: mmengine "
                "would execute it as Python when resuming, and this Runner "
                "never writes it (its config is in meta['cfg']). A "
                "checkpoint that carries one was not written by mmengine "
                "0.10's Runner.",
                logger='current',
                level=logging.WARNING)
        if self.strict:
            model = runner.model
            # DDP wrappers and test-time-augmentation models (not a
            # registered wrapper) both hold the real model as .module, and
            # their checkpoints store that model's keys.
            while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
                model = model.module
            check_state_dict_fits(model, checkpoint, _source(runner))


def _source(runner) -> str:
    """The file the Runner is loading, for messages (the hook is not told)."""
    # Private Runner attributes, hence read through compat.
    return str(runner_checkpoint_source(runner) or 'the loaded checkpoint')
