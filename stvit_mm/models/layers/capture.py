"""Whether the model is being captured as a graph instead of run eagerly,
and what changes then."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def exporting() -> bool:
    """Whether the model is being captured as one graph for every input size
    (``torch.export``, either ONNX exporter, TorchScript tracing).

    The layers then take their export path: size-dependent indices and masks
    computed from tensor ops of the (symbolic) size instead of cached per
    size, no private kernels, no branch on a size or a tensor value.
    """
    return (torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()
            or torch.jit.is_tracing())


def attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor],
              dropout_p: float = 0.) -> Tensor:
    """``F.scaled_dot_product_attention``, or its plain math while exporting
    or when the mask needs a gradient.

    Export decomposes the fused CPU kernel into the same math but with a
    different output memory layout, which breaks the views that the traced
    graph took after it; the plain math has one layout throughout. A mask
    that needs a gradient (Swin's relative position bias, in training) keeps
    SDPA off its fused kernels anyway, and its math fallback adds a pass
    over the logits looking for fully masked rows that this math skips.

    Args:
        q (Tensor): (..., Nq, d) queries.
        k (Tensor): (..., Nk, d) keys.
        v (Tensor): (..., Nk, d) values.
        attn_mask (Tensor, optional): Additive mask broadcast to
            (..., Nq, Nk).
        dropout_p (float): Dropout on the attention weights.

    Returns:
        Tensor: (..., Nq, d).
    """
    trained_mask = attn_mask is not None and attn_mask.requires_grad
    if not exporting() and not trained_mask:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                              dropout_p=dropout_p)
    logits = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if attn_mask is not None:
        logits = logits + attn_mask
    weights = logits.softmax(dim=-1)
    if dropout_p:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


def cast(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """``tensor.to(dtype)``, leaving no trace in a captured graph when the
    dtype is already right (eager ``to`` returns the tensor itself then)."""
    return tensor if tensor.dtype == dtype else tensor.to(dtype)
