"""The released ImageNet classifier in mmpretrain: parity with the golden
fixture (the released classification code's logits and stage outputs), the
configs, the converted release evaluated by ``tools/test.py``, and other
input sizes."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import stvit_mm  # noqa: F401
from helpers.paths import REPO
from helpers.release_layout import (detection_backbone_release,
                                    imagenet_release_model)
from stvit_mm.models import STViTRSwin
from stvit_mm.models.backbones.release_weights import (classifier_state_dict,
                                                       read_release)
from stvit_mm.models.layers.imagenet_unit import (ReleaseTokenGeneration,
                                                  key_window_starts)

S_CONFIG = REPO / 'configs' / 'imagenet' / 'stvit_r_swin_s_16xb64_in1k.py'
B_CONFIG = REPO / 'configs' / 'imagenet' / 'stvit_r_swin_b_16xb64_in1k.py'


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def build_mmpretrain(cfg):
    """``mmpretrain.registry.MODELS.build``, under mmpretrain's scope
    whatever an earlier test left as the default."""
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def classifier_cfg(fixture_config):
    """The S config's model at a fixture model's sizes (released argument
    names)."""
    cfg = Config.fromfile(str(S_CONFIG)).model
    cfg.backbone.update(embed_dims=fixture_config['embed_dim'],
                        depths=fixture_config['depths'],
                        num_heads=fixture_config['num_heads'],
                        window_size=fixture_config['window_size'],
                        drop_path_rate=0.)
    cfg.head.update(in_channels=fixture_config['embed_dim'] * 8,
                    num_classes=fixture_config['num_classes'])
    return cfg


def build_classifier(fixture):
    """The classifier mmpretrain builds from the config, holding the
    fixture's released state dict (converted without loss, strictly)."""
    model = build_mmpretrain(classifier_cfg(fixture['config']))
    weights = read_release({'model': fixture['state_dict']})
    assert not weights.unknown
    model.load_state_dict(classifier_state_dict(weights), strict=True)
    return model.eval()


def grid_order(semantic, side):
    """(B, nW, s*s, C) window-order tokens -> (B, N, C) in the release's
    raster order over the (nH * s, nW * s) token grid."""
    B, nW, N, C = semantic.shape
    s = int(N**0.5)
    x = semantic.reshape(B, side, nW // side, s, s, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, -1, C)


@pytest.mark.parametrize('name', ['model_a', 'model_b'])
def test_parity_with_the_released_classifier(imagenet_release_weights, name):
    """Logits, every stage output and the semantic tokens of each unit
    within 1e-4 (relative to the largest value) of what the released code
    gave, for every case of the fixture."""
    fixture = imagenet_release_weights[name]
    model = build_classifier(fixture)
    backbone = model.backbone
    seen = {}

    def keep(key):
        return lambda _m, _i, out: seen.__setitem__(key, out)

    for i, down in enumerate(backbone.downsamples):
        down.register_forward_hook(keep(f'stage{i}'))
    backbone.stages[3].register_forward_hook(keep('stage3'))
    backbone.stages[2].register_forward_hook(keep('pre_downsample'))
    units = backbone.stages[2].units
    for u, unit in enumerate(units):
        unit.global_block.register_forward_hook(keep(f'semantic{u}'))
    for case in fixture['cases']:
        with torch.no_grad():
            logits = model(case['input'], mode='tensor')
        assert rel_err(logits, case['logits']) < 1e-4, case['name']
        for i, expected in enumerate(case['stages']):
            ours = seen[f'stage{i}'].flatten(1, 2)
            assert rel_err(ours, expected) < 1e-4, (case['name'], i)
        assert rel_err(seen['pre_downsample'].flatten(1, 2),
                       case['stage3_pre_downsample']) < 1e-4
        assert len(case['stage3_semantic_tokens']) == len(units)
        for u, expected in enumerate(case['stage3_semantic_tokens']):
            ours = grid_order(seen[f'semantic{u}'], side=2)
            assert rel_err(ours, expected) < 1e-4, (case['name'], u)


def test_the_variant_is_what_makes_the_difference(imagenet_release_weights):
    """The same weights in the detection variant give other logits: the
    fixture tells the two stage-3 computations apart."""
    fixture = imagenet_release_weights['model_a']
    model = build_classifier(fixture)
    case = fixture['cases'][0]
    with torch.no_grad():
        for unit in model.backbone.stages[2].units:
            assert type(unit).__name__ == 'ReleaseImageNetUnit'
        cfg = classifier_cfg(fixture['config'])
        cfg.backbone.variant = 'detection'
        detection = build_mmpretrain(cfg).eval()
        detection.load_state_dict(model.state_dict())
        assert rel_err(detection(case['input'], mode='tensor'),
                       case['logits']) > 1e-2


def test_key_windows_are_the_released_unfold_at_14():
    """unfold(kernel 10, stride 4) of a 14x14 map starts at 0 and 4."""
    assert key_window_starts(14, 7, 10) == (0, 4)
    # Any map: one neighbourhood per window, inside the map, holding it.
    for length in (7, 21, 28, 35):
        starts = key_window_starts(length, 7, 10)
        assert len(starts) == length // 7
        k = min(10, length)
        for i, start in enumerate(starts):
            assert 0 <= start <= 7 * i and 7 * i + 7 <= start + k <= length


def test_generation_is_the_released_unfold_of_zero_padded_tokens():
    """Block 1 at a map that needs padding (13x10 -> 14x14), official mode:
    the release's computation, which zero-pads the tokens, unfolds them
    (kernel 10, stride 4) and norms and projects every copy, gives the
    output of projecting each token once and gathering the projections."""
    import types

    import torch.nn.functional as F

    from stvit_mm.models.layers.semantic import max_pool_windows
    torch.manual_seed(0)
    block = ReleaseTokenGeneration(7, embed_dims=32, num_heads=2,
                                   layer_scale_init_value=1.).eval()
    for param in block.parameters():  # norms away from identity
        param.data.add_(0.1 * torch.randn_like(param))
    image = torch.randn(2, 13, 10, 32)
    geo = types.SimpleNamespace(sample_window_size=3, local_mask=None)
    with torch.no_grad():
        ours = block(image, geo)
        pooled = max_pool_windows(image, 7, 3, 0.)
        padded = F.pad(image, (0, 0, 0, 4, 0, 1)).permute(0, 3, 1, 2)
        unfolded = F.unfold(padded, 10, stride=4).reshape(2, 32, 100, 4)
        queries = block.norm1(pooled)
        keys, values = block.attn.split_kv(torch.cat(
            [queries, block.norm1(unfolded.permute(0, 3, 2, 1))], dim=2))
        x = block.gamma1(block.attn(queries, keys, values))
        expected = x + block.ffn.gamma2(block.ffn.layers(block.norm2(x)))
    assert ours.shape == (2, 4, 9, 32)
    assert rel_err(ours, expected) < 1e-5


TINY = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
            variant='imagenet', out_indices=(3, ))


@pytest.mark.parametrize('pad_mask', ['official', 'exact'])
@pytest.mark.parametrize('size', [(384, 384), (200, 264), (96, 96)])
def test_runs_at_other_sizes(size, pad_mask):
    """384 px fine-tuning (stage 3 at 24x24, padded to whole windows),
    odd sizes and maps smaller than a key window: finite outputs and
    gradients for every parameter."""
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, pad_mask=pad_mask)
    model.init_weights()
    model.train()
    out, = model(torch.randn(1, 3, *size))
    H, W = size
    assert out.shape == (1, 128, -(-H // 32), -(-W // 32))
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize('pad_mask,independent', [('exact', True),
                                                  ('official', False)])
def test_exact_mode_ignores_what_padded_keys_hold(monkeypatch, pad_mask,
                                                  independent):
    """Padded positions of block 1's key neighbourhoods: masked in exact
    mode (what they hold cannot matter), kv(norm1(0)) taking part in
    official mode (the release's zero padding)."""
    from mmcv.cnn.bricks.scale import LayerScale
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, pad_mask=pad_mask)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, LayerScale):
            m.weight.data.fill_(1.)
    model.eval()
    img = torch.randn(2, 3, 200, 150)  # stage 3: 13x10, padded to 14x14
    original = ReleaseTokenGeneration.padded_kv

    def noisy(self, like):
        fill = original(self, like)
        return fill + 10 * torch.randn_like(fill)

    with torch.no_grad():
        before, = model(img)
        monkeypatch.setattr(ReleaseTokenGeneration, 'padded_kv', noisy)
        after, = model(img)
    assert torch.allclose(before, after, atol=1e-5) == independent


@pytest.mark.parametrize('config, width', [(S_CONFIG, 96), (B_CONFIG, 128)])
def test_configs_build_the_released_classifier(config, width,
                                               imagenet_release_weights):
    """mmpretrain builds each config's classifier; a released ImageNet
    state dict of that size (the released layout, checked against the
    released code's own in test_release_weights) converts to it with every
    key and shape matching, nothing dropped but derived buffers."""
    cfg = Config.fromfile(str(config))
    with torch.device('meta'):
        model = build_mmpretrain(cfg.model)
    assert type(model).__name__ == 'ImageClassifier'
    assert model.backbone.variant == 'imagenet'
    assert model.backbone.out_indices == (3, )
    assert model.head.fc.in_features == 8 * width
    assert model.head.fc.out_features == 1000
    ours = model.state_dict()
    with torch.device('meta'):
        backbone = STViTRSwin(**{k: v for k, v in cfg.model.backbone.items()
                                 if k != 'type'}).state_dict()
    release = imagenet_release_model(detection_backbone_release(backbone))
    weights = read_release({'model': release})
    converted = classifier_state_dict(weights)
    assert sorted(converted) == sorted(ours)
    for key, value in converted.items():
        assert value.shape == ours[key].shape, key
    dropped = [k for keys in weights.dropped.values() for k in keys]
    assert all(k.endswith(('attn_mask', 'relative_position_index',
                           'weight', 'bias')) for k in dropped)
    assert sorted(weights.classifier) == ['head.bias', 'head.weight',
                                          'norm.bias', 'norm.weight']


@pytest.mark.parametrize('config, drop_path', [(S_CONFIG, 0.3),
                                               (B_CONFIG, 0.4)])
def test_configs_hold_the_released_recipe(config, drop_path):
    """The release's logs (log/small.txt, log/base.txt), written out."""
    cfg = Config.fromfile(str(config))
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 20
    assert cosine.type == 'CosineAnnealingLR' and cosine.begin == 20
    assert cosine.eta_min == 1e-5
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW'
    assert optim.optimizer.lr == 1e-3 and cfg.auto_scale_lr.base_batch_size \
        == 1024 == 16 * cfg.train_dataloader.batch_size
    assert optim.optimizer.weight_decay == 0.05
    assert optim.clip_grad.max_norm == 5.0
    augments = {a.type: a.alpha for a in cfg.model.train_cfg.augments}
    assert augments == {'Mixup': 0.8, 'CutMix': 1.0}
    assert cfg.model.head.loss.label_smooth_val == 0.1
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop'].scale == 224
    assert train['RandomResizedCrop'].interpolation == 'bicubic'
    rand = train['RandAugment']
    assert (rand.magnitude_level, rand.magnitude_std, rand.num_policies) == (
        9, 0.5, 2) and rand.policies == 'timm_increasing'
    assert train['RandomErasing'].erase_prob == 0.25
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['ResizeEdge'].scale == 256 and test['CenterCrop'].crop_size \
        == 224
