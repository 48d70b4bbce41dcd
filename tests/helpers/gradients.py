"""Outputs and gradients of a model, for comparing two computations of it."""
import torch


def outputs_and_gradients(model, img):
    """Outputs, input gradient and every parameter's gradient of a weighted
    sum of the outputs (fixed random weights: every element matters).

    Returns:
        tuple[list[Tensor], dict[str, Tensor]]: The detached outputs, and
        the gradients by name (``'input'`` and every parameter's name).
    """
    img = img.clone().requires_grad_()
    outs = model(img)
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
               for o in outs)
    loss.backward()
    grads = {'input': img.grad}
    grads.update({n: p.grad for n, p in model.named_parameters()})
    model.zero_grad(set_to_none=True)
    return [o.detach() for o in outs], grads
