"""TorchScript tracing, and the fvcore-style FLOP counter built on it
(mmengine's ``get_model_complexity_info``, which mmdet's stock
``tools/analysis_tools/get_flops.py`` runs), work on STViT-R-Swin."""
import warnings

import pytest
import torch

from stvit_mm.models import STViTRSwin
from stvit_mm.utils import count_macs


def tiny(**kwargs):
    torch.manual_seed(0)
    model = STViTRSwin(embed_dims=16, depths=(2, 2, 6, 2),
                       num_heads=(1, 2, 4, 8), **kwargs)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
def test_jit_trace_matches_eager(pad_mask):
    model = tiny(pad_mask=pad_mask)
    # 200x232: a 13x15 stage-3 map, padded to whole windows.
    x = torch.randn(1, 3, 200, 232)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings about sizes
        traced = torch.jit.trace(model, x, check_trace=False)
        expected, got = model(x), traced(x)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_mmengine_counter_agrees_with_ours():
    from mmengine.analysis import get_model_complexity_info
    model = tiny()
    x = torch.randn(1, 3, 200, 232)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        stock = get_model_complexity_info(model, None, inputs=(x, ),
                                          show_table=False,
                                          show_arch=False)['flops']
    ours = count_macs(model, x.shape)
    # Both count multiply-accumulates of convolutions, linears and
    # matmuls; the stock counter also counts a few cheap ops ours leaves
    # out (the stem's batch norms): 1-4% more on tiny backbones.
    assert 0.98 <= stock / ours <= 1.10, (stock, ours)
