"""A ``CheckpointHook`` whose saves survive a crash in the middle."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from stvit_mm.utils.compat import checkpoint_hook_save_method

from ..fileio import ATOMIC_BACKEND, atomic_write

__all__ = ['AtomicCheckpointHook']

# The hook overrides this private CheckpointHook method; an mmengine without
# it would silently skip the override (and write in place again), so compat
# refuses at import instead.
checkpoint_hook_save_method()


def _is_local(path) -> bool:
    return path is None or '://' not in str(path)


# Registered in mmengine's root registry, which mmdet's and mmseg's HOOKS
# inherit, so ``type='AtomicCheckpointHook'`` builds under either scope.
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` that never leaves the work
    directory without a complete checkpoint.

    mmengine 0.10.7's hook, on each save, (1) deletes the oldest kept
    checkpoint once ``max_keep_ckpts`` are kept, (2) writes the new one in
    place under its final name and (3) points ``last_checkpoint`` at it. A
    crash during (2) (a killed job, a full disk, an exception while
    serialising) leaves a truncated ``iter_N.pth``; with ``max_keep_ckpts=1``
    the only good checkpoint is already gone and ``last_checkpoint`` names a
    deleted file, so ``--resume`` has nothing to resume.

    This hook takes the same arguments and, for a local ``out_dir``:

    * writes every checkpoint through
      :class:`~stvit_mm.engine.AtomicLocalBackend` (temporary file in the
      same directory, fsync, rename), so a checkpoint file is complete or
      absent, for the regular and the ``save_best`` checkpoints alike;
    * rewrites ``last_checkpoint`` the same way, and only once the new
      checkpoint is complete;
    * deletes checkpoints beyond ``max_keep_ckpts`` only after that.

    A crash therefore leaves the previous checkpoint and a
    ``last_checkpoint`` that names it, at the cost of briefly holding
    ``max_keep_ckpts + 1`` checkpoints on disk. Remote ``out_dir``\\ s
    (``s3://`` ...) and explicit ``backend_args`` keep mmengine's behaviour.
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and _is_local(out_dir)):
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)

    @property
    def _atomic(self) -> bool:
        return (self.backend_args or {}).get('backend') == ATOMIC_BACKEND

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)

        # The bookkeeping of CheckpointHook, in the same order (the saved
        # message hub must list the new checkpoint among the kept ones), but
        # the file of the dropped step is only deleted after the save.
        expired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        atomic_write(
            str(self.last_ckpt).encode(),
            osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in expired:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(old_step))
            if path == self.last_ckpt:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by DeepSpeed are directories
                self.file_backend.rmtree(path)
