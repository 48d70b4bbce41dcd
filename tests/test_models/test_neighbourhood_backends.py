"""The generation steps' neighbourhood attention backends
(``STViTRSwin(neighbourhood_impl=...)``): each against the gathered
reference in float64 (outputs, the input gradient and every parameter
gradient), the dispatch, attention dropout, and mixed precision beside
mmdet's Swin under the same autocast."""
import pytest
import torch

import stvit_mm  # noqa: F401
from helpers.gradients import outputs_and_gradients
from stvit_mm.analysis.device_check import perturb_weights
from stvit_mm.models import STViTRSwin
from stvit_mm.models.layers.capture import exporting
from stvit_mm.models.layers.neighbourhood_attention import (
    CUDA_BACKEND, NEIGHBOURHOOD_IMPLS, choose_backend)

TINY = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
            drop_path_rate=0.)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def tiny_model(**kwargs):
    """A tiny STViT-R-Swin, moved off its init with every layer scale 1 (at
    the 1e-5 init the semantic blocks would hardly change the outputs)."""
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, **kwargs)
    model.init_weights()
    return perturb_weights(model, layer_scale=1.)


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
@pytest.mark.parametrize('s', [2, 3, 4])
def test_backends_equal_the_gather_in_float64(pad_mask, s):
    """Odd input (stage 3: 15 x 12 tokens, 3 x 2 windows, padded), batch 2,
    training mode: strips and key windows against the gathered
    neighbourhoods attended by PyTorch's own autograd."""
    model = tiny_model(pad_mask=pad_mask, sample_window_size=s)
    model.double().train()
    img = torch.randn(2, 3, 233, 181, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0))
    model.neighbourhood_impl = 'gather'
    ref_outs, ref_grads = outputs_and_gradients(model, img)
    for impl in ('strips', 'key_windows'):
        model.neighbourhood_impl = impl
        outs, grads = outputs_and_gradients(model, img)
        for out, ref in zip(outs, ref_outs):
            assert rel_err(out, ref) < 1e-10, impl
        assert grads.keys() == ref_grads.keys()
        for name, grad in grads.items():
            assert grad is not None, (impl, name)
            assert rel_err(grad, ref_grads[name]) < 1e-10, (impl, name)


def test_auto_and_routing():
    assert choose_backend('auto', 'cpu', dropout=False) == 'strips'
    assert choose_backend('auto', 'cuda', dropout=False) == CUDA_BACKEND
    # Strips merge partial softmaxes: no dropout, so it is routed.
    assert choose_backend('strips', 'cpu', dropout=True) == 'key_windows'
    assert choose_backend('auto', 'cpu', dropout=True) == 'key_windows'
    for impl in ('key_windows', 'gather'):
        assert choose_backend(impl, 'cpu', dropout=True) == impl
        assert choose_backend(impl, 'cuda', dropout=False) == impl
    with pytest.raises(ValueError, match="'strips' runs on the CPU only"):
        choose_backend('strips', 'cuda', dropout=False)


def test_auto_under_graph_capture_is_key_windows(monkeypatch):
    monkeypatch.setattr(torch.compiler, 'is_exporting', lambda: True)
    assert exporting()
    for impl in ('auto', 'strips'):
        assert choose_backend(impl, 'cpu', dropout=False) == 'key_windows'


def test_unknown_backend_is_refused_with_the_allowed_values():
    allowed = str(NEIGHBOURHOOD_IMPLS)
    with pytest.raises(ValueError, match='neighbourhood_impl must be one of') \
            as info:
        STViTRSwin(**TINY, neighbourhood_impl='flash')
    assert allowed in str(info.value) and "'flash'" in str(info.value)
    model = STViTRSwin(**TINY)
    with pytest.raises(ValueError, match='neighbourhood_impl must be one of'):
        model.neighbourhood_impl = 'natten'
    model.neighbourhood_impl = 'gather'
    assert model.neighbourhood_impl == 'gather'
    assert {b.neighbourhood_impl for unit in model.stages[2].units
            for b in unit.generate} == {'gather'}


@pytest.mark.parametrize('impl', ['strips', 'key_windows', 'gather'])
def test_attention_dropout_in_training(impl):
    """With attention dropout every backend trains (strips as key windows):
    the drop changes the outputs, a fixed seed repeats them, and every
    parameter gets a finite gradient."""
    model = tiny_model(attn_drop_rate=0.5, neighbourhood_impl=impl)
    img = torch.randn(1, 3, 128, 160,
                      generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        plain = model(img)[2]
    model.train()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs = model(img)
        sum(o.square().mean() for o in outs).backward()
        runs.append(outs[2].detach())
    assert torch.equal(runs[0], runs[1])
    assert rel_err(runs[0], plain) > 1e-3
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def _autocast_errors(model, img, dtype):
    """Relative errors under CPU autocast against fp32 of the outputs and
    of the gradient reaching the patch embedding's output (the input's own
    gradient passes the stem's train-mode BatchNorm, which magnifies bf16
    error alike for every backend), and whether the outputs and every
    gradient were finite."""
    results = []
    for precision in (None, dtype):
        x = img.clone().requires_grad_()
        seen = {}

        def keep_grad(module, args, out):
            out = out[0] if isinstance(out, tuple) else out
            out.register_hook(lambda g: seen.update(grad=g.float()))

        hook = model.patch_embed.register_forward_hook(keep_grad)
        with torch.autocast('cpu', dtype=precision or torch.float32,
                            enabled=precision is not None):
            outs = model(x)
        hook.remove()
        sum(o.float().square().mean() for o in outs).backward()
        grads = [x.grad] + [p.grad for p in model.parameters()
                            if p.grad is not None]
        model.zero_grad(set_to_none=True)
        results.append(([o.detach().float() for o in outs], seen['grad'],
                        grads))
    (ref, ref_embed, _), (low, low_embed, low_grads) = results
    finite = all(torch.isfinite(t).all() for t in low + low_grads)
    return max(rel_err(a, b) for a, b in zip(low, ref)), rel_err(
        low_embed, ref_embed), finite


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_mixed_precision_beside_mmdet_swin(dtype):
    """bf16 / fp16 autocast forward + backward for each backend: finite,
    and errors against fp32 of the same order as mmdet's Swin (same
    channels, heads and input) under the same autocast."""
    from mmdet.models.backbones import SwinTransformer
    img = torch.randn(1, 3, 128, 160,
                      generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    swin = SwinTransformer(embed_dims=16, depths=(2, 2, 6, 2),
                           num_heads=(1, 2, 4, 8), window_size=7,
                           drop_path_rate=0.)
    swin.init_weights()
    perturb_weights(swin)
    swin.train()
    swin_out, swin_grad, swin_finite = _autocast_errors(swin, img, dtype)
    assert swin_finite
    model = tiny_model().train()
    for impl in ('strips', 'key_windows', 'gather'):
        model.neighbourhood_impl = impl
        out, grad, finite = _autocast_errors(model, img, dtype)
        assert finite, impl
        assert 0 < out < 3 * swin_out, (impl, out, swin_out)
        assert 0 < grad < 3 * swin_grad, (impl, grad, swin_grad)
