"""STViT-R-Swin backbone: parity with the released implementation, shapes,
gradients, masking modes, checkpointing, freezing and input/config errors."""
import math
import subprocess
import sys

import pytest
import torch

import stvit_mm  # noqa: F401
from helpers.gradients import outputs_and_gradients
from helpers.official_reference import official_forward
from helpers.paths import CONVERTER
from stvit_mm.models import STViTRSwin
from stvit_mm.models.layers.token_attention import LayerScaledBlock

TINY = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def model_kwargs(cfg, **overrides):
    kwargs = dict(
        embed_dims=cfg['embed_dim'], depths=cfg['depths'],
        num_heads=cfg['num_heads'], window_size=cfg['window_size'],
        sample_window_size=cfg['window_sample_size'],
        semantic_key_windows=(cfg['k_window_size_1'],
                              cfg['k_window_size_2']),
        recovery_key_window=cfg['restore_k_window_size'],
        pad_mask='official', drop_path_rate=0.)
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope='module')
def converted(parity, tmp_path_factory):
    """Each fixture unit's weights, released as an ImageNet-style file and
    pushed through the real converter script."""
    out = {}
    folder = tmp_path_factory.mktemp('converted')
    for name, unit in parity.items():
        src, dst = folder / f'{name}_release.pth', folder / f'{name}_mm.pth'
        release = dict(unit['state_dict'])
        release['head.weight'] = torch.zeros(10, 128)  # classifier to drop
        release['norm.weight'] = torch.ones(128)
        torch.save({'model': release, 'epoch': 300}, src)
        proc = subprocess.run([sys.executable, CONVERTER, str(src), str(dst)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert 'head.weight' in proc.stdout  # the drop is reported
        out[name] = str(dst)
    return out


def build(cfg, checkpoint, **overrides):
    model = STViTRSwin(**model_kwargs(
        cfg, init_cfg=dict(type='Pretrained', checkpoint=checkpoint),
        **overrides))
    model.init_weights()
    model.eval()
    return model


@pytest.mark.parametrize('unit', ['unit1', 'unit2'])
def test_parity_with_released_outputs(parity, converted, unit):
    model = build(parity[unit]['config'], converted[unit])
    for case in parity[unit]['cases']:
        with torch.no_grad():
            outs = model(case['input'])
        for out, expected in zip(outs, case['outputs']):
            assert out.shape == expected.shape
            assert rel_err(out, expected) < 1e-4, tuple(case['input'].shape)


@pytest.mark.parametrize('shape', [(2, 3, 97, 61), (1, 3, 1, 1),
                                   (1, 3, 7, 300), (3, 3, 150, 229)])
def test_parity_with_reference_beyond_the_fixture(parity, converted, shape):
    unit = parity['unit1']
    model = build(unit['config'], converted['unit1'])
    img = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = model(img)
    for out, expected in zip(outs, official_forward(unit['state_dict'],
                                                    unit['config'], img)):
        assert rel_err(out, expected) < 1e-4


@pytest.mark.parametrize('s', [2, 4])
def test_semantic_token_count_is_an_inference_dial(parity, converted, s):
    unit = parity['unit2']
    model = build(unit['config'], converted['unit2'])
    model.sample_window_size = s
    img = torch.randn(1, 3, 200, 304)
    with torch.no_grad():
        outs = model(img)
    cfg = dict(unit['config'], window_sample_size=s)
    for out, expected in zip(outs, official_forward(unit['state_dict'], cfg,
                                                    img)):
        assert rel_err(out, expected) < 1e-4


@pytest.mark.parametrize('H,W', [(1, 1), (5, 3), (31, 64), (57, 113)])
def test_output_strides(H, W):
    model = STViTRSwin(**TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, H, W))
    for i, out in enumerate(outs):
        stride = 2**(i + 2)
        assert out.shape == (1, 16 * 2**i, math.ceil(H / stride),
                             math.ceil(W / stride))
        assert torch.isfinite(out).all()


def set_layer_scales(model, value):
    # At their 1e-5 init, stacked layer scales shrink the gradient reaching
    # the first generation step to ~1e-18; order-1 scales make every block
    # visibly matter, as in the fixture.
    for name, p in model.named_parameters():
        if 'gamma' in name:
            p.data.fill_(value)


def test_every_parameter_gets_a_finite_gradient():
    # Seeded: drop path may legitimately drop a branch for the whole batch.
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, drop_path_rate=0.2)
    model.init_weights()
    set_layer_scales(model, 0.5)
    model.train()
    outs = model(torch.randn(2, 3, 75, 90))
    sum(o.square().mean() for o in outs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def _with_random_padding_keys(monkeypatch):
    original = LayerScaledBlock.padded_token

    def random_fill(self, like):
        return torch.randn_like(original(self, like)) * 10

    monkeypatch.setattr(LayerScaledBlock, 'padded_token', random_fill)


@pytest.mark.parametrize('pad_mask,independent', [('exact', True),
                                                  ('official', False)])
def test_exact_mode_ignores_what_padded_keys_hold(monkeypatch, pad_mask,
                                                  independent):
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, pad_mask=pad_mask)
    model.init_weights()
    set_layer_scales(model, 1.)
    model.eval()
    img = torch.randn(2, 3, 200, 150)  # stage 3: 13x10, padded both ways
    with torch.no_grad():
        before = model(img)
        _with_random_padding_keys(monkeypatch)
        after = model(img)
    same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    assert same == independent


def test_with_cp_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = STViTRSwin(**TINY, drop_path_rate=0.)
    plain.init_weights()
    ckpt = STViTRSwin(**TINY, drop_path_rate=0., with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    img = torch.randn(1, 3, 64, 96)
    grads = []
    for model in (plain, ckpt):
        model.train()
        outs = model(img)
        sum(o.sum() for o in outs).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for o1, o2 in zip(plain(img), ckpt(img)):
        assert torch.allclose(o1, o2, atol=1e-6)
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


def test_frozen_stages():
    model = STViTRSwin(**TINY, frozen_stages=2)
    model.train()
    frozen = ('patch_embed.', 'stages.0.', 'stages.1.', 'norm0.', 'norm1.',
              'downsamples.0.', 'downsamples.1.')
    for name, p in model.named_parameters():
        assert p.requires_grad != name.startswith(frozen), name
    assert not model.patch_embed.training and not model.stages[1].training
    assert model.stages[2].training
    assert model.train() is model  # unlike mmdet's Swin, train() chains


def test_bf16_autocast_matches_fp32():
    torch.manual_seed(0)
    model = STViTRSwin(**TINY)
    model.init_weights()
    model.eval()
    img = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ref = model(img)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(img)
    for a, b in zip(low, ref):
        # The output LayerNorms autocast to fp32; the blocks ran in bf16.
        assert not torch.equal(a.float(), b)
        assert rel_err(a.float(), b) < 0.1


@pytest.mark.parametrize('kwargs,fragment', [
    (dict(depths=(2, 2, 8, 2)), 'multiple of 6'),
    (dict(depths=(2, 2, 6)), 'depths and num_heads need 4'),
    (dict(sample_window_size=0), 'sample_window_size must be in 1..7'),
    (dict(sample_window_size=8), 'sample_window_size must be in 1..7'),
    (dict(semantic_key_windows=(5, 21)), 'semantic_key_windows must each'),
    (dict(recovery_key_window=2), 'recovery_key_window'),
    (dict(pad_mask='none'), "pad_mask must be one of ('official', 'exact')"),
    (dict(num_heads=(3, 2, 4, 8)), 'num_heads[0]=3 must divide'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_impossible_configs_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match='STViTRSwin') as err:
        STViTRSwin(**dict(TINY, **kwargs))
    assert fragment in str(err.value)


@pytest.mark.parametrize('img,fragment', [
    (torch.randn(3, 64, 64), 'expects images of shape'),
    (torch.randn(1, 1, 3, 64, 64), 'expects images of shape'),
    (torch.randn(1, 4, 64, 64), 'got 4 channels'),
    (torch.randn(0, 3, 64, 64), 'empty input'),
])
def test_bad_inputs_are_refused(img, fragment):
    with pytest.raises(ValueError, match=fragment):
        STViTRSwin(**TINY)(img)


def test_checkpoint_for_another_architecture_lists_mismatches(tmp_path):
    other = STViTRSwin(embed_dims=32, depths=(2, 2, 6, 2),
                       num_heads=(1, 2, 4, 8))
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': other.state_dict()}, path)
    model = STViTRSwin(**TINY, init_cfg=dict(type='Pretrained',
                                             checkpoint=str(path)))
    with pytest.raises(ValueError,
                       match=r'shape mismatches \(\d+\): .*checkpoint '
                       r'\(128,\) vs '
                       r'model \(64,\)'):
        model.init_weights()


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_registered_in_every_library(scope):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    assert registry.module_dict['STViTRSwin'] is STViTRSwin


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_bare_type_builds_under_each_default_scope(scope):
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(scope)
    model = MODELS.build(dict(type='STViTRSwin', **TINY))
    assert isinstance(model, STViTRSwin)


SIZES = dict(
    S=dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    B=dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)))


@pytest.mark.parametrize('size', ['S', 'B'])
def test_flops_are_the_papers_fraction_of_swin(size):
    from mmdet.models.backbones import SwinTransformer

    from stvit_mm.utils.flops import count_macs
    swin = SwinTransformer(**SIZES[size], window_size=7)
    swin.eval()  # mmdet's Swin.train() returns None: no chaining
    ours = STViTRSwin(**SIZES[size]).eval()
    shape = (1, 3, 800, 1280)
    ratio = count_macs(ours, shape) / count_macs(swin, shape)
    assert 0.6 < ratio <= 0.72  # paper: 134/194 = 0.69 (S), 233/343 (B)


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
def test_dense_and_gathered_recovery_agree(monkeypatch, pad_mask):
    from stvit_mm.models.layers import geometry, neighbourhood_attention
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, pad_mask=pad_mask)
    model.init_weights()
    set_layer_scales(model, 1.)
    model.eval()
    img = torch.randn(2, 3, 200, 150)
    outs = {}
    for ratio in (neighbourhood_attention.DENSE_RECOVERY_MAX_RATIO, 0.):
        monkeypatch.setattr(neighbourhood_attention,
                            'DENSE_RECOVERY_MAX_RATIO', ratio)
        geometry._stage_geometry_cpu.cache_clear()
        geometry.stage_geometry.cache_clear()
        with torch.no_grad():
            outs[ratio] = model(img)
    geometry._stage_geometry_cpu.cache_clear()
    geometry.stage_geometry.cache_clear()
    dense, gathered = outs.values()
    for a, b in zip(dense, gathered):
        assert rel_err(a, b) < 1e-5


def test_parity_on_a_large_image_that_gathers(parity, converted,
                                              monkeypatch):
    from stvit_mm.models.layers import geometry, neighbourhood_attention

    # Gathering pays only above 3 * 27**2 semantic tokens (a 1800-pixel
    # image at s = 3); this one's 33x33 gather when the bound is 1.25.
    monkeypatch.setattr(neighbourhood_attention, 'DENSE_RECOVERY_MAX_RATIO',
                        1.25)
    geometry._stage_geometry_cpu.cache_clear()
    geometry.stage_geometry.cache_clear()
    unit = parity['unit1']
    model = build(unit['config'], converted['unit1'])
    img = torch.randn(1, 3, 1200, 1210)
    geo = geometry.stage_geometry((75, 76), 7, 3, (14, 21), 27, 'official',
                                  torch.device('cpu'))
    assert not geo.recovery_dense
    with torch.no_grad():
        outs = model(img)
    geometry._stage_geometry_cpu.cache_clear()
    geometry.stage_geometry.cache_clear()
    for out, expected in zip(outs, official_forward(unit['state_dict'],
                                                    unit['config'], img)):
        assert rel_err(out, expected) < 1e-4


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
@pytest.mark.parametrize('shape,recovery', [
    ((2, 3, 97, 61), 'dense'), ((1, 3, 224, 224), 'dense'),
    ((1, 3, 40, 500), 'gathered'), ((2, 3, 97, 61), 'gathered')])
def test_training_gradients_match_the_gathered_reference(
        monkeypatch, pad_mask, shape, recovery):
    """The training path (generation steps from whole-window strips with a
    key-side backward, recovery densely from the image tokens, or gathered)
    against the straightforward one (neighbourhoods gathered per window and
    attended by PyTorch's own autograd, recovery gathered from padded
    windows): same outputs, same gradients for the input and every
    parameter. In float64, so that only a difference in the math can
    show."""
    from stvit_mm.models.layers import geometry, neighbourhood_attention

    def use_recovery_ratio(ratio):
        monkeypatch.setattr(neighbourhood_attention,
                            'DENSE_RECOVERY_MAX_RATIO', ratio)
        geometry._stage_geometry_cpu.cache_clear()
        geometry.stage_geometry.cache_clear()

    default_ratio = neighbourhood_attention.DENSE_RECOVERY_MAX_RATIO
    use_recovery_ratio(default_ratio if recovery == 'dense' else 0.)
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, pad_mask=pad_mask, drop_path_rate=0.)
    model.init_weights()
    set_layer_scales(model, 0.7)
    model.double().train()
    img = torch.randn(*shape, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(0))
    if recovery == 'dense':
        assert geometry.stage_geometry(
            (-(-shape[2] // 16), -(-shape[3] // 16)), 7, 3, (14, 21), 27,
            pad_mask, torch.device('cpu')).recovery_dense
    outs, grads = outputs_and_gradients(model, img)
    # The reference: gathered neighbourhoods and a gathered recovery.
    model.neighbourhood_impl = 'gather'
    use_recovery_ratio(0.)
    ref_outs, ref_grads = outputs_and_gradients(model, img)
    use_recovery_ratio(default_ratio)
    for out, ref in zip(outs, ref_outs):
        assert rel_err(out, ref) < 1e-6
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        # The dense recovery folds padded keys into one with a float32
        # log-count bias: 1e-7 in float64, not 1e-15.
        assert rel_err(grad, ref_grads[name]) < 1e-6, name


@pytest.mark.parametrize('layer_scale', [0.3, 0.])
@pytest.mark.parametrize('training', [True, False])
def test_fused_residual_is_mmcv_layer_scale_and_drop_path(layer_scale,
                                                          training):
    """The semantic blocks' residuals, each one multiply-add, against
    mmcv's LayerScale, DropPath and FFN composed (same random draws)."""
    block = LayerScaledBlock(embed_dims=16, num_heads=2, drop_path_rate=0.5,
                             layer_scale_init_value=layer_scale)
    block.train(training)
    shortcut, attended = torch.randn(2, 8, 5, 16), torch.randn(2, 8, 5, 16)
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        if fused:
            out = block.residual(shortcut, attended)
        else:
            x = shortcut + block.drop_path(block.gamma1(attended))
            out = block.ffn(block.norm2(x), identity=x)
        out.square().sum().backward()
        # norm1 and attn take no part in the residuals: no gradient.
        results.append((out.detach(), {n: p.grad.clone()
                                       for n, p in block.named_parameters()
                                       if p.grad is not None}))
        block.zero_grad(set_to_none=True)
    (out, grads), (ref, ref_grads) = results
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    assert 'ffn.layers.0.0.weight' in grads
    for name, grad in grads.items():
        assert torch.allclose(grad, ref_grads[name], rtol=1e-5,
                              atol=1e-6), name
