"""ONNX export of STViT-R-Swin: one dynamic export serves every input size.

The backbone (the golden fixture's ``unit1`` weights: C=16, depths 2-2-6-2)
is exported once with batch, height and width dynamic, and ONNX Runtime is
compared with PyTorch at odd sizes, batch 2 and 3, a size below one window
and COCO-like sizes, and with the released code's stored outputs.

``pad_mask`` and s change the sparsified stage (stage 3) only, so the other
settings are checked by exporting that stage alone (also dynamic), at the
feature-map sizes those images give it, for ('official', 2) and
('exact', 4): both modes, every s, and the recovery both dense (what the
example size picks) and gathered. A stage takes half the export time of the
whole backbone (30-45 s on two cores), which keeps this file near 90 s. The
export path's parts (geometry from tensor ops, binned max pooling,
attention math) are also checked against the eager ones directly, for every
setting, in milliseconds.
"""
import pytest
import torch

from stvit_mm.deployment import (check_onnx, export_backbone, export_module,
                                 relative_error)
from stvit_mm.models import STViTRSwin
from stvit_mm.models.backbones.release_weights import read_release
from stvit_mm.models.layers import geometry, neighbourhood_attention, swin
from stvit_mm.models.layers.export_geometry import traced_stage_geometry
from stvit_mm.models.layers.semantic import _binned_max

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

TINY = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
            drop_path_rate=0.)
#: Odd sizes, batch 2 and 3, below one window (20 px: stage 3 is 2x2 and
#: stage 4 1x1), a single pixel, a thin strip and COCO-like sizes.
SIZES = [(1, 3, 20, 20), (2, 3, 97, 61), (1, 3, 1, 1), (1, 3, 7, 300),
         (3, 3, 150, 229), (1, 3, 512, 672), (1, 3, 800, 1216)]
#: Stage-3 settings checked through a stage-only export, with the recovery
#: form the export picks (dense for the example size) or forced to gather.
STAGE_SETTINGS = [('official', 2, 'dense'), ('exact', 4, 'gathered')]


@pytest.fixture(scope='module')
def weights(parity):
    return read_release(parity['unit1']['state_dict']).backbone


def build(weights, pad_mask='official', s=3):
    model = STViTRSwin(**TINY, pad_mask=pad_mask, sample_window_size=s)
    model.load_state_dict(weights)
    return model.eval()


def images():
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=gen) for shape in SIZES]


def _clear_caches():
    # Caches filled while tracing would keep fake tensors.
    swin.relative_position_index.cache_clear()
    geometry.stage_geometry.cache_clear()


def _caches_are_real():
    assert geometry.stage_geometry.cache_info().currsize == 0
    assert type(swin.relative_position_index(7)) is torch.Tensor


@pytest.fixture(scope='module')
def backbone_onnx(weights, tmp_path_factory):
    """The backbone, ('official', 3), exported once."""
    _clear_caches()
    path = export_backbone(build(weights),
                           str(tmp_path_factory.mktemp('onnx') / 'b.onnx'))
    _caches_are_real()
    return path


def test_one_dynamic_export_serves_every_size(backbone_onnx, weights):
    report = check_onnx(backbone_onnx, build(weights), images(), rtol=1e-4)
    assert [row['shape'] for row in report] == SIZES
    for row in report:
        assert len(row['errors']) == 4 and max(row['errors']) < 1e-4, row


def test_onnx_runtime_reproduces_the_released_outputs(backbone_onnx,
                                                      parity):
    import onnxruntime as ort
    session = ort.InferenceSession(backbone_onnx,
                                   providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images']
    assert [o.name for o in session.get_outputs()] == [
        'stage0', 'stage1', 'stage2', 'stage3']
    for case in parity['unit1']['cases']:
        outs = session.run(None, {'images': case['input'].numpy()})
        for out, expected in zip(outs, case['outputs']):
            assert relative_error(torch.from_numpy(out), expected) < 1e-4


@pytest.mark.parametrize('pad_mask,s,recovery', STAGE_SETTINGS)
def test_sparsified_stage_exports_for_every_setting(weights, tmp_path,
                                                    monkeypatch, pad_mask, s,
                                                    recovery):
    stage = build(weights, pad_mask, s).stages[2]
    if recovery == 'gathered':
        monkeypatch.setattr(neighbourhood_attention,
                            'DENSE_RECOVERY_MAX_RATIO', 0.)
    _clear_caches()
    path = export_module(stage, str(tmp_path / 'stage.onnx'),
                         torch.randn(2, 17, 23, 64),
                         {0: 'batch', 1: 'height', 2: 'width'},
                         optimize=False)
    _caches_are_real()
    # What each image of SIZES gives stage 3: ceil(side / 16).
    gen = torch.Generator().manual_seed(0)
    maps = [torch.randn(n, -(-h // 16), -(-w // 16), 64, generator=gen)
            for n, _, h, w in SIZES]
    report = check_onnx(path, stage, maps, rtol=1e-4)
    assert all(max(row['errors']) < 1e-4 for row in report), report


# ---------------------------------------------------------------------------
# The export path's parts against the eager ones (no ONNX, fast)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('recovery', ['gathered', 'dense'])
@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
@pytest.mark.parametrize('s', [1, 2, 3, 4, 7])
def test_traced_geometry_equals_the_cached_one(monkeypatch, pad_mask, s,
                                               recovery):
    ratio = 0. if recovery == 'gathered' else 1e9
    monkeypatch.setattr(neighbourhood_attention, 'DENSE_RECOVERY_MAX_RATIO',
                        ratio)
    cpu = torch.device('cpu')
    for H, W in [(1, 1), (2, 9), (7, 7), (8, 13), (14, 22), (20, 41),
                 (50, 76)]:
        cached = geometry._stage_geometry_cpu.__wrapped__(
            (H, W), 7, s, (14, 21), 27, pad_mask)
        traced = traced_stage_geometry((H, W), 7, s, (14, 21), 27,
                                       pad_mask, cpu)
        assert traced.pads == cached.pads
        assert traced.num_windows == cached.num_windows
        assert not traced.semantic_plans
        assert traced.recovery_dense == cached.recovery_dense == (
            recovery == 'dense')
        pairs = list(zip(traced.semantic_index, cached.semantic_index)) + [
            (traced.recovery_index, cached.recovery_index),
            (traced.recovery_windows, cached.recovery_windows)]
        masks = list(zip(traced.semantic_masks, cached.semantic_masks)) + [
            (traced.recovery_mask, cached.recovery_mask),
            (traced.local_mask, cached.local_mask),
            (traced.global_mask, cached.global_mask)]
        for new, old in pairs:
            assert (new is old is None) or torch.equal(new, old), (H, W)
        for new, old in masks:
            if old is None:  # eager: every key takes part
                assert new is None or not new.any(), (H, W)
            else:
                assert torch.equal(new, old), (H, W)


@pytest.mark.parametrize('s', range(1, 8))
def test_binned_max_equals_adaptive_max_pool(s):
    windows = torch.randn(2, 5, 7, 7, 8)
    windows[:, 3, 4:] = -torch.inf  # padding in exact mode
    expected = torch.nn.functional.adaptive_max_pool2d(
        windows.flatten(0, 1).permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)
    assert torch.equal(_binned_max(windows, s).flatten(0, 1), expected)


def test_traced_shift_mask_equals_the_cached_one():
    cpu = torch.device('cpu')
    for size in [(7, 7), (14, 49), (63, 21)]:
        assert torch.equal(swin.traced_shift_mask(size, 7, 3, cpu),
                           swin.shifted_window_mask(size, 7, 3, cpu))


@pytest.mark.parametrize('pad_mask,s', [('official', 3), ('exact', 3),
                                        ('official', 2), ('exact', 4)])
def test_export_path_computes_what_eager_does(monkeypatch, weights,
                                              pad_mask, s):
    model = build(weights, pad_mask, s)
    images = [torch.randn(2, 3, 97, 61), torch.randn(1, 3, 20, 20),
              torch.randn(1, 3, 400, 530)]  # 530: the recovery gathers
    with torch.no_grad():
        eager = [model(img) for img in images]
        monkeypatch.setattr(torch.compiler, 'is_exporting', lambda: True)
        swin.relative_position_index.cache_clear()
        traced = [model(img) for img in images]
    for outs, refs in zip(traced, eager):
        for out, ref in zip(outs, refs):
            assert relative_error(out, ref) < 1e-5


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
def test_key_windows_equal_gathered_neighbourhoods(pad_mask):
    """The exported generation steps' attention (each key window of one
    key/value map meeting the queries that see it) against gathering each
    neighbourhood,
    in float64, for neighbourhoods of 2x2 and 3x3 windows and one that is
    not a whole number of windows (10)."""
    from stvit_mm.models.layers.capture import attention
    from stvit_mm.models.layers.key_windows import attend_by_key_windows
    from stvit_mm.models.layers.neighbourhoods import gather_neighbourhoods
    gen = torch.Generator().manual_seed(0)
    B, heads, d, windows = 2, 4, 8, (14, 21, 10)
    C = heads * d
    project = torch.nn.Linear(C, 2 * C).double()
    for H, W in [(1, 1), (3, 40), (13, 9), (14, 14), (50, 76)]:
        geo = geometry._stage_geometry_cpu.__wrapped__(
            (H, W), 7, 3, windows, 27, pad_mask)
        padded = torch.randn(C, dtype=torch.float64, generator=gen)
        normed = torch.randn(B, H, W, C, dtype=torch.float64, generator=gen)
        q = torch.randn(B, geo.num_windows[0] * geo.num_windows[1], heads, 9,
                        d, dtype=torch.float64, generator=gen)
        kv, fill = project(normed), project(padded)
        for step, k in enumerate(windows):
            mask = geo.semantic_masks[step]
            mask = (torch.zeros(q.shape[1], 1, 1, k * k) if mask is None else
                    mask).double()
            keys, values = gather_neighbourhoods(
                kv.flatten(1, 2), fill, geo.semantic_index[step], heads)
            expected = attention(q, keys, values, mask[None])
            actual = attend_by_key_windows(q, normed - padded,
                                           project.weight, fill, mask,
                                           geo.num_windows, 7, k)
            assert relative_error(actual, expected) < 1e-12, (H, W, k)
