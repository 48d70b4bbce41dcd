"""Checks that the processes of a distributed run really train one model."""
import math
from typing import Optional

import torch
from mmengine.dist import all_gather, get_world_size, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

__all__ = ['RankConsistencyHook']


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """Compares the ranks of a distributed run every ``interval`` iterations.

    DDP keeps the parameters of all processes bitwise identical: they start
    from rank 0's weights, every rank applies the same averaged gradients
    and the same optimizer step. Ranks that silently stopped communicating
    (a launcher or backend misconfiguration that leaves every process
    training alone) or that diverged (a module whose gradients bypass DDP)
    break that. After each ``interval``-th iteration every rank all-gathers
    its training loss and a fingerprint of its parameters (float64 sum and
    sum of squares of each parameter tensor), and every rank checks the
    fingerprints bit for bit against rank 0's. On agreement, rank 0 logs the
    loss of each rank and their mean, the loss of the global batch, which
    every rank has computed from the same gathered values. On disagreement
    every rank raises (they all see the same gathered data, so none is left
    waiting), naming the parameters that differ.

    Buffers are not compared: BN running statistics legitimately differ
    between ranks when each normalises its own batch (``BN`` rather than
    ``SyncBN``, with ``broadcast_buffers=False``). Outside distributed runs
    the hook does nothing.

    Args:
        interval (int): Check every ``interval`` training iterations.
            Defaults to 50. The cost is one all-gather of two float64 values
            per parameter tensor.
    """
    priority = 'NORMAL'

    def __init__(self, interval: int = 50):
        if interval < 1:
            raise ValueError(
                f'RankConsistencyHook: interval must be >= 1, got {interval}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not is_distributed() or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        names, values = [], []
        with torch.no_grad():
            for name, param in model.named_parameters():
                param = param.detach().double()
                names.append(name)
                values += [param.sum(), param.square().sum()]
        loss = (outputs or {}).get('loss', math.nan)
        device = values[0].device if values else torch.device('cpu')
        values.append(torch.as_tensor(float(loss), dtype=torch.float64,
                                      device=device))
        gathered = [t.cpu() for t in all_gather(torch.stack(values))]

        # Bitwise: NaN == NaN here, and nothing is "close enough".
        reference = gathered[0][:-1].view(torch.int64)
        differing = {}
        for rank, other in enumerate(gathered[1:], start=1):
            diff = (other[:-1].view(torch.int64) != reference).nonzero()
            for index in diff.flatten().tolist():
                differing.setdefault(names[index // 2], []).append(rank)
        step = runner.iter + 1
        if differing:
            listed = ', '.join(f'{name} (rank {ranks[0]})'
                               for name, ranks in list(differing.items())[:8])
            raise RuntimeError(
                f'RankConsistencyHook: after iteration {step} the parameters '
                f'of {len(differing)} of {len(names)} tensors differ from '
                f'rank 0: {listed}. The processes are not training one '
                'model: check that the run was launched with --launcher and '
                'that every rank joined the same process group.')
        losses = [float(g[-1]) for g in gathered]
        runner.logger.info(
            f'RankConsistencyHook: iter {step}: parameters identical on all '
            f'{get_world_size()} ranks; loss per rank: '
            f'{", ".join(f"{v:.6f}" for v in losses)}; mean over ranks: '
            f'{sum(losses) / len(losses):.6f}')
