"""Correctness of STViT-R-Swin on an accelerator, checked against the CPU.

The same weights and inputs run on a reference device (the CPU, fp32) and on
the device under test:

* fp32 outputs of the inference path (``torch.no_grad``) and of the
  training path (autograd on, eval mode), each output compared with the
  reference by the relative error ``max|a - b| / max|b|``. The generation
  steps run whichever backend the model's ``neighbourhood_impl`` gives on
  each device (``'auto'``: the strips on the CPU, ``CUDA_BACKEND`` on CUDA;
  :mod:`stvit_mm.models.layers.neighbourhood_attention`), so one check
  compares two backends as well as two devices;
* fp16 and bf16 ``torch.autocast`` outputs: finite, and within a bound of
  the device's own fp32 outputs;
* training steps (forward, backward, AdamW step) under autocast, fp16 with a
  ``GradScaler``: every parameter gets a gradient, all gradients and the
  updated weights are finite.

TF32 is switched off while it runs, so fp32 means fp32. The weights are
random but moved off their init (layer scales set to an order-one value,
norm weights and biases and BatchNorm statistics perturbed), so that every
block changes the outputs: at their 1e-5 init the stage-3 layer scales would
hide an error in any semantic block. Runs on any pair of devices, so the
same code is tested on the CPU (``'cpu'`` against ``'cpu'``, bf16 autocast).

The report and the checks of a config's backbone are in
:mod:`stvit_mm.analysis.device_report`. Only stvit_mm and mmcv's Python
modules are needed: neither mmcv's compiled ops nor ``mmdet.models``.
"""
import contextlib
import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    'DTYPES', 'compare_outputs', 'no_tf32', 'perturb_weights', 'rel_err',
    'run_device_check', 'train_step_check'
]

DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max|b|`` in fp32 (on ``b``'s device).

    Args:
        a (Tensor): The output under test.
        b (Tensor): The reference.

    Returns:
        float: The relative error (``inf`` if ``a`` is not finite).
    """
    a = a.detach().float().to(b.device)
    b = b.detach().float()
    if not torch.isfinite(a).all():
        return float('inf')
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def perturb_weights(model: nn.Module, layer_scale: float = 0.5,
                    seed: int = 0) -> nn.Module:
    """Move a freshly initialised model off its init, in place.

    Layer scales (parameters whose name contains ``gamma``) are set to
    ``layer_scale``; norm weights become ``1 + 0.2 * N(0, 1)``, norm biases
    ``0.1 * N(0, 1)``; BatchNorm running means ``0.1 * N(0, 1)`` and running
    variances uniform in [0.5, 1.5].

    Args:
        model (nn.Module): The model.
        layer_scale (float): Value of every layer-scale entry.
            Defaults to 0.5.
        seed (int): Seed of the perturbation. Defaults to 0.

    Returns:
        nn.Module: ``model``.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(t):
        return torch.randn(t.shape, generator=gen, dtype=t.dtype)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'gamma' in name:
                p.fill_(layer_scale)
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._NormBase,
                              nn.GroupNorm)):
                if getattr(m, 'weight', None) is not None:
                    m.weight.copy_(1 + 0.2 * randn(m.weight))
                if getattr(m, 'bias', None) is not None:
                    m.bias.copy_(0.1 * randn(m.bias))
                if getattr(m, 'running_mean', None) is not None:
                    m.running_mean.copy_(0.1 * randn(m.running_mean))
                    m.running_var.copy_(
                        0.5 + torch.rand(m.running_var.shape, generator=gen))
    return model


@contextlib.contextmanager
def no_tf32():
    """Switch TF32 off for CUDA matmuls and cuDNN; restore on exit."""
    old = (torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = old


def _autocast(device: str, dtype: Optional[str]):
    if dtype in (None, 'fp32'):
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type,
                          dtype=DTYPES[dtype])


def _forward(model, x, dtype=None, grad=False) -> Tuple[torch.Tensor, ...]:
    with torch.set_grad_enabled(grad), _autocast(x.device.type, dtype):
        return tuple(o.detach() for o in model(x))


def compare_outputs(model: nn.Module, device: str, ref_device: str = 'cpu',
                    sizes: Sequence[Tuple[int, int]] = ((800, 1216),
                                                        (512, 512)),
                    batch: int = 2, dtypes: Sequence[str] = ('fp16', 'bf16'),
                    fp32_bound: float = 1e-4, low_bound: float = 2e-2,
                    seed: int = 0, label: str = '') -> List[Dict]:
    """Outputs on ``device`` against fp32 outputs on ``ref_device``.

    Args:
        model (nn.Module): The model (its weights are copied, it is not
            moved); evaluated in eval mode.
        device (str): Device under test.
        ref_device (str): Reference device, run in fp32 without autograd.
            Defaults to ``'cpu'``.
        sizes (Sequence[tuple]): Input (H, W) sizes.
        batch (int): Batch size. Defaults to 2.
        dtypes (Sequence[str]): Autocast precisions to check against the
            device's fp32 outputs. Defaults to ``('fp16', 'bf16')``.
        fp32_bound (float): Largest relative error of fp32 outputs.
            Defaults to 1e-4.
        low_bound (float): Largest relative error of autocast outputs
            against fp32 on the same device. Defaults to 2e-2.
        seed (int): Seed of the inputs. Defaults to 0.
        label (str): First cell of each row (e.g. the pad-mask mode).

    Returns:
        list[dict]: One row per size and precision: ``label``, ``size``,
        ``precision``, ``against``, ``errors`` (one per output), ``error``
        (their max), ``bound``, ``finite`` and ``passed``.
    """
    ref_model = copy.deepcopy(model).to(ref_device).eval()
    dev_model = copy.deepcopy(model).to(device).eval()
    rows = []
    with no_tf32():
        for h, w in sizes:
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(batch, 3, h, w, generator=gen)
            ref = _forward(ref_model, x.to(ref_device))
            xd = x.to(device)
            fp32 = _forward(dev_model, xd)
            cases = [('fp32', f'{ref_device} fp32', fp32, ref, fp32_bound),
                     ('fp32 autograd', f'{ref_device} fp32',
                      _forward(dev_model, xd, grad=True), ref, fp32_bound)]
            cases += [(dt, f'{device} fp32', _forward(dev_model, xd, dt),
                       fp32, low_bound) for dt in dtypes]
            for precision, against, outs, refs, bound in cases:
                errors = [rel_err(o, r) for o, r in zip(outs, refs)]
                finite = all(bool(torch.isfinite(o).all()) for o in outs)
                rows.append(dict(
                    label=label, size=f'{h}x{w}', precision=precision,
                    against=against, errors=errors, error=max(errors),
                    bound=bound, finite=finite,
                    passed=finite and max(errors) <= bound))
    return rows


def train_step_check(model: nn.Module, device: str,
                     dtypes: Sequence[str] = ('bf16', 'fp16'),
                     size: Tuple[int, int] = (800, 1216), batch: int = 2,
                     steps: int = 3, lr: float = 1e-4,
                     seed: int = 0) -> List[Dict]:
    """Training steps under autocast: gradients and updates stay finite.

    Each precision trains a fresh copy of ``model`` (train mode, so drop
    path as configured) for ``steps`` steps of AdamW on the loss
    ``sum(mean(out ** 2))`` over the outputs; fp16 scales the loss with a
    ``GradScaler`` (whose first steps may be skipped while it finds its
    scale: that is counted, not failed). The gradient counts are those of
    the last step taken, read after unscaling; it fails if every step was
    skipped.

    Args:
        model (nn.Module): The model (copied).
        device (str): Device.
        dtypes (Sequence[str]): Autocast precisions (``'fp32'`` for none).
        size (tuple): Input (H, W). Defaults to (800, 1216).
        batch (int): Batch size. Defaults to 2.
        steps (int): Optimizer steps. Defaults to 3.
        lr (float): AdamW learning rate. Defaults to 1e-4.
        seed (int): Seed of the inputs and of drop path. Defaults to 0.

    Returns:
        list[dict]: One row per precision: ``precision``, ``size``,
        ``params``, ``with_grad``, ``nonfinite_grad``, ``zero_grad``,
        ``skipped`` (steps the scaler skipped), ``losses``,
        ``params_finite`` and ``passed``.
    """
    device_type = torch.device(device).type
    rows = []
    for dt in dtypes:
        torch.manual_seed(seed)
        net = copy.deepcopy(model).to(device)
        net.train()  # on its own line: mmdet's Swin.train() returns None
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
        scaler = torch.amp.GradScaler(device_type, enabled=dt == 'fp16')
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, 3, *size, generator=gen).to(device)
        losses, skipped, stats = [], 0, None
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with _autocast(device, dt):
                outs = net(x)
            loss = sum(o.float().square().mean() for o in outs)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            grads = [p.grad for p in params]
            step_stats = (
                sum(g is not None for g in grads),
                sum(g is not None and not bool(torch.isfinite(g).all())
                    for g in grads),
                sum(g is not None and not bool(g.any()) for g in grads))
            scale = scaler.get_scale() if scaler.is_enabled() else 1.
            scaler.step(opt)
            scaler.update()
            if scaler.is_enabled() and scaler.get_scale() < scale:
                skipped += 1  # overflow: the scaler skipped this step
            else:
                stats = step_stats
            losses.append(loss.item())
        with_grad, nonfinite, zero = stats or (0, -1, -1)
        params_finite = all(bool(torch.isfinite(p).all()) for p in params)
        passed = (stats is not None and with_grad == len(params)
                  and nonfinite == 0 and params_finite
                  and all(math.isfinite(v) for v in losses))
        rows.append(dict(
            precision=dt, size=f'{size[0]}x{size[1]}', batch=batch,
            params=len(params), with_grad=with_grad, nonfinite_grad=nonfinite,
            zero_grad=zero, skipped=skipped, losses=losses,
            params_finite=params_finite, passed=bool(passed)))
        del net, opt
    return rows


def run_device_check(backbone_cfg: Dict, device: str,
                     ref_device: str = 'cpu',
                     sizes: Sequence[Tuple[int, int]] = ((800, 1216),
                                                         (512, 512)),
                     batch: int = 2,
                     pad_masks: Sequence[str] = ('official', 'exact'),
                     dtypes: Sequence[str] = ('fp16', 'bf16'),
                     train_dtypes: Sequence[str] = ('bf16', 'fp16'),
                     train_size: Optional[Tuple[int, int]] = None,
                     train_batch: int = 2, train_steps: int = 3,
                     layer_scale: float = 0.5, seed: int = 0) -> Dict:
    """All checks of one backbone config.

    Args:
        backbone_cfg (dict): STViTRSwin keyword arguments (a config's
            ``model.backbone``; ``type`` and ``init_cfg`` are ignored).
        device (str): Device under test.
        ref_device (str): Reference device. Defaults to ``'cpu'``.
        sizes (Sequence[tuple]): Input sizes of the output comparison.
        batch (int): Batch size of the output comparison. Defaults to 2.
        pad_masks (Sequence[str]): ``pad_mask`` modes to build and compare.
        dtypes (Sequence[str]): Autocast precisions of the comparison.
        train_dtypes (Sequence[str]): Precisions of the training check;
            empty to skip it.
        train_size (tuple, optional): Input of the training check.
            Defaults to the first of ``sizes``.
        train_batch (int): Batch of the training check. Defaults to 2.
        train_steps (int): Steps of the training check. Defaults to 3.
        layer_scale (float): See :func:`perturb_weights`. Defaults to 0.5.
        seed (int): Seed of weights and inputs. Defaults to 0.

    Returns:
        dict: ``outputs`` (rows of :func:`compare_outputs`), ``train`` (rows
        of :func:`train_step_check`), ``setting`` and ``passed``.
    """
    from stvit_mm.models import STViTRSwin

    kwargs = {k: v for k, v in dict(backbone_cfg).items()
              if k not in ('type', 'init_cfg')}
    torch.manual_seed(seed)
    base = STViTRSwin(**kwargs)
    base.init_weights()
    perturb_weights(base, layer_scale, seed)
    outputs = []
    for mode in pad_masks:
        model = STViTRSwin(**dict(kwargs, pad_mask=mode))
        model.load_state_dict(base.state_dict())
        outputs += compare_outputs(model, device, ref_device, sizes, batch,
                                   dtypes, seed=seed, label=mode)
        del model
    train = train_step_check(base, device, train_dtypes,
                             train_size or sizes[0], train_batch,
                             train_steps, seed=seed) if train_dtypes else []
    setting = dict(device=device, ref_device=ref_device, batch=batch,
                   torch=torch.__version__, layer_scale=layer_scale,
                   embed_dims=kwargs.get('embed_dims'),
                   depths=list(kwargs.get('depths', [])))
    if torch.device(device).type == 'cuda':
        setting['gpu'] = torch.cuda.get_device_name(device)
    return dict(setting=setting, outputs=outputs, train=train,
                passed=all(r['passed'] for r in outputs + train))
