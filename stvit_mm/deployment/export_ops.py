"""Export-safe stand-ins for layers of the OpenMMLab heads that do not export
with dynamic input sizes.

``torch.export`` decomposes ``adaptive_avg_pool2d`` into index selects whose
bounds are fixed by the example input's size, so a graph traced at one size
reads out of bounds at another (UperNet's pyramid pooling module pools the
last feature map to 1, 2, 3 and 6 bins). Written as two matrix products
with pooling matrices built from the symbolic size, the same average exports
for every size.
"""
import contextlib
from typing import Iterator, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ['AdaptiveAvgPool2dByMatmul', 'export_safe_pooling']


def _pooling_matrix(size, bins: int, like: Tensor) -> Tensor:
    """(bins, size) matrix whose row ``i`` averages the inputs of adaptive
    pooling's bin ``i``: ``[floor(i*size/bins), ceil((i+1)*size/bins))``."""
    i = torch.arange(bins, device=like.device)
    start = torch.div(i * size, bins, rounding_mode='floor')
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
    j = torch.arange(size, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


class AdaptiveAvgPool2dByMatmul(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as ``P_h @ x @ P_w^T`` (same bins, same
    numbers up to summation order, ~1e-7 relative).

    Args:
        output_size (int | tuple[int, int]): Bins along height and width
            (``None`` entries, "keep the input size", are not supported).
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]]):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if None in output_size:
            raise ValueError('AdaptiveAvgPool2dByMatmul needs a fixed '
                             f'output size, got {output_size}')
        self.output_size = tuple(output_size)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, bins_h, bins_w)."""
        rows = _pooling_matrix(x.shape[-2], self.output_size[0], x)
        cols = _pooling_matrix(x.shape[-1], self.output_size[1], x)
        return rows @ x @ cols.transpose(0, 1)


@contextlib.contextmanager
def export_safe_pooling(model: nn.Module) -> Iterator[int]:
    """Swap every ``nn.AdaptiveAvgPool2d`` of ``model`` (e.g. UperNet's
    pyramid pooling) for :class:`AdaptiveAvgPool2dByMatmul` while the block
    runs, and put the originals back afterwards.

    Yields:
        int: How many layers were swapped.
    """
    swapped = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if (isinstance(child, nn.AdaptiveAvgPool2d)
                    and None not in _pair(child.output_size)):
                swapped.append((parent, name, child))
    try:
        for parent, name, child in swapped:
            setattr(parent, name, AdaptiveAvgPool2dByMatmul(child.output_size))
        yield len(swapped)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)
