"""The released checkpoints as they really are: the ImageNet release (as its
training script saves it) initialises the paper configs, the COCO release
(an mmdet 2.11 checkpoint) converts and evaluates, and files that do not fit
are still refused with their keys.

The released files cannot be downloaded here; ``release_layout`` writes
files of the same layouts, and the first test checks that layout against the
real one (the state dicts the released classification code saved for the
golden fixture).
"""
import json
import logging
import math
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.logging import MMLogger

import stvit_mm  # noqa: F401
from helpers.http_server import local_only, serving
from helpers.mmdet211_cascade_keys import release_detector_keys
from helpers.official_reference import official_forward
from helpers.paths import REPO
from helpers.release_layout import (detection_backbone_release,
                                    imagenet_release_model,
                                    save_detector_release,
                                    save_imagenet_release)
from stvit_mm.apis import ConversionError, convert_release
from stvit_mm.datasets import generate_synthetic_dataset
from stvit_mm.models import STViTRSwin
from stvit_mm.utils import CheckpointMismatchError

DET_CONFIG = 'configs/cascade_stvit_r_swin_s_3x.py'
SEG_CONFIG = 'configs/upernet_stvit_r_swin_s_160k_ade20k.py'
S = dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
COCO80 = '_coco80'
OUTPUT_NORMS = [f'norm{i}.{p}' for i in range(4) for p in ('bias', 'weight')]


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def fixture_kwargs(cfg):
    """STViTRSwin arguments of a fixture config (released argument names)."""
    return dict(embed_dims=cfg.get('embed_dim'), depths=cfg['depths'],
                num_heads=cfg['num_heads'], window_size=cfg['window_size'],
                drop_path_rate=0.)


def log_of(fn):
    """Run ``fn`` and return what it logged through mmengine's logger."""
    logger = MMLogger.get_instance(f'release_{id(fn)}', log_level='INFO')
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    try:
        fn()
    finally:
        logger.removeHandler(handler)
    return '\n'.join(records)


def pretrained(path, **kwargs):
    model = STViTRSwin(init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                       **kwargs)
    log = log_of(model.init_weights)
    return model.eval(), log


# ---------------------------------------------------------------------------
# The layout
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['model_a', 'model_b'])
def test_generated_imagenet_layout_is_the_released_one(
        imagenet_release_weights, name):
    """Key for key, shape for shape and dtype for dtype, what the released
    classification code saved (depth 6 and 18, 10 classes)."""
    real = imagenet_release_weights[name]
    cfg = real['config']
    with torch.device('meta'):
        ours = STViTRSwin(**fixture_kwargs(cfg)).state_dict()
    generated = imagenet_release_model(detection_backbone_release(ours),
                                       num_classes=cfg['num_classes'])
    assert sorted(generated) == sorted(real['state_dict'])
    for key, value in real['state_dict'].items():
        assert generated[key].shape == value.shape, key
        assert generated[key].dtype == value.dtype, key


def test_real_imagenet_weights_load_as_the_release_did(
        imagenet_release_weights, tmp_path):
    """The released code's own state dict (model_a), in the file layout of
    its training script, initialises the backbone: the classifier and the
    derived buffers are left out, the output norms start at 1 and 0, each
    reported by name; every other tensor is the released one."""
    real = imagenet_release_weights['model_a']
    path = tmp_path / 'STViT-R-Swin-T.pth'
    save_imagenet_release(path, real['state_dict'])
    model, log = pretrained(path, **fixture_kwargs(real['config']))
    sd = model.state_dict()
    for i in range(4):
        assert torch.equal(sd[f'norm{i}.weight'], torch.ones(16 * 2**i))
        assert torch.equal(sd[f'norm{i}.bias'], torch.zeros(16 * 2**i))
    released = real['state_dict']
    assert torch.equal(sd['stages.2.units.0.generate.1.attn.kv.weight'],
                       released['layers.2.blocks.2.attn.kv.weight'])
    assert torch.equal(sd['stages.2.units.0.recovery_block.gamma1.weight'],
                       released['layers.2.blocks.5.layer_scale_1'])
    assert torch.equal(sd['patch_embed.convs.1.bn.running_var'],
                       released['patch_embed.proj.2.bn.running_var'])
    # Reported once, by name.
    for key in OUTPUT_NORMS:
        assert log.count(key) == 1, log
    assert 'layers.0.blocks.1.attn_mask' in log
    assert 'relative_position_index' in log
    assert 'head.weight' in log and 'norm.bias' in log


@pytest.mark.parametrize('unit', ['unit1', 'unit2'])
@pytest.mark.parametrize('route', ['init_cfg', 'converter'])
def test_imagenet_layout_gives_the_reference_outputs(parity, tmp_path, unit,
                                                     route):
    """The golden fixture's weights rewritten into the ImageNet layout give
    what the release's strict=False load gave: the reference forward with
    norm0..norm3 at weight 1, bias 0."""
    fixture = parity[unit]
    model_file = imagenet_release_model(fixture['state_dict'],
                                        num_classes=10)
    path = tmp_path / 'release.pth'
    save_imagenet_release(path, model_file)
    if route == 'converter':
        converted = tmp_path / 'converted.pth'
        convert_release(str(path), str(converted), log=lambda _: None)
        path = converted
    cfg = fixture['config']
    model, _ = pretrained(
        path, **fixture_kwargs(cfg),
        sample_window_size=cfg['window_sample_size'],
        semantic_key_windows=(cfg['k_window_size_1'],
                              cfg['k_window_size_2']),
        recovery_key_window=cfg['restore_k_window_size'], pad_mask='official')
    reference = dict(fixture['state_dict'])
    for key in OUTPUT_NORMS:
        reference[key] = (torch.ones_like if key.endswith('weight') else
                          torch.zeros_like)(reference[key])
    for case in fixture['cases']:
        with torch.no_grad():
            outs = model(case['input'])
        expected = official_forward(reference, cfg, case['input'])
        for out, ref in zip(outs, expected):
            assert rel_err(out, ref) < 1e-4


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------
def _tiny_release(parity):
    return imagenet_release_model(parity['unit1']['state_dict'],
                                  num_classes=10)


def _without_block(model):
    return {k: v for k, v in model.items()
            if not k.startswith('layers.2.blocks.3.')}


def _with_foreign(model):
    return dict(model, **{'layers.1.blocks.0.attn.extra.weight':
                          torch.zeros(2, 2)})


def _with_global_token(model):
    # What the released USE_GLOBAL=True variant adds; not this model.
    return dict(model, **{'layers.2.semantic_token2': torch.zeros(1, 9, 64)})


def _with_wrong_shape(model):
    key = 'layers.0.blocks.0.mlp.fc1.weight'
    return dict(model, **{key: model[key][:-1]})


def _without_stem(model):
    return {k: v for k, v in model.items()
            if not k.startswith('patch_embed.proj.2.')}


@pytest.mark.parametrize('damage,fragment', [
    (_without_block, 'missing in the checkpoint (16): '
     'stages.2.units.0.local_block.attn.kv.bias, '),
    (_without_stem, 'missing in the checkpoint (6): '
     'patch_embed.convs.1.bn.bias, '),
    (_with_foreign, 'unexpected in the checkpoint (1): '
     'stages.1.blocks.0.attn.extra.weight'),
    (_with_global_token, 'unexpected in the checkpoint (1): '
     'layers.2.semantic_token2'),
    (_with_wrong_shape, 'shape mismatches (1): stages.0.blocks.0.ffn.layers.0'
     '.0.weight (checkpoint (63, 16) vs model (64, 16))'),
])
def test_damaged_release_is_refused_with_its_keys(parity, tmp_path, damage,
                                                  fragment):
    path = tmp_path / 'release.pth'
    save_imagenet_release(path, damage(_tiny_release(parity)))
    model = STViTRSwin(init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                       **fixture_kwargs(parity['unit1']['config']))
    with pytest.raises(CheckpointMismatchError) as err:
        model.init_weights()
    assert fragment in str(err.value)
    # The output norms are never the reason (an ImageNet file lacks them).
    assert 'norm0.weight' not in str(err.value)


def test_converter_refuses_unknown_backbone_weights(parity, tmp_path):
    path = tmp_path / 'release.pth'
    save_imagenet_release(path, _with_global_token(_tiny_release(parity)))
    with pytest.raises(ConversionError,
                       match=r'match no part of STViT-R-Swin: '
                       r'layers\.2\.semantic_token2'):
        convert_release(str(path), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_detector_backbone_missing_its_output_norms_is_refused(
        parity, tmp_path):
    """Only ImageNet pretraining may lack the output norms."""
    backbone = {k: v for k, v in parity['unit1']['state_dict'].items()
                if not k.startswith('norm1.')}
    path = tmp_path / 'detector.pth'
    save_detector_release(path, backbone, {})
    model = STViTRSwin(init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                       **fixture_kwargs(parity['unit1']['config']))
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in the checkpoint \(2\): norm1.bias, '
                       r'norm1.weight'):
        model.init_weights()


# ---------------------------------------------------------------------------
# The paper configs, through the real tools
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def s_imagenet_release(tmp_path_factory):
    """An ImageNet-release file of an S-shaped model (random values)."""
    torch.manual_seed(0)
    model = STViTRSwin(**S)
    model.init_weights()
    path = tmp_path_factory.mktemp('release') / 'STViT-R-Swin-S.pth'
    save_imagenet_release(path, imagenet_release_model(
        detection_backbone_release(model.state_dict())))
    return path


def run_tool(*args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


def small_run(work_dir, batch_size):
    """One iteration, no validation, no checkpoint: data and iterations
    shrink, the model does not."""
    return [
        '--work-dir', str(work_dir), '--cfg-options',
        'train_cfg.val_interval=100', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=100',
        'default_hooks.checkpoint.save_last=False',
        f'train_dataloader.batch_size={batch_size}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ]


def coco_options(root):
    ann = f'{root}/annotations/instances_val{COCO80}.json'
    options = [f'val_evaluator.ann_file={ann}',
               f'test_evaluator.ann_file={ann}']
    for split, name in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        prefix = f'{split}_dataloader.dataset'
        options += [f'{prefix}.data_root={root}/',
                    f'{prefix}.ann_file=annotations/instances_{name}'
                    f'{COCO80}.json', f'{prefix}.data_prefix.img={name}/']
    # The release's DETR-style augmentation, at a small scale.
    pipe = 'train_dataloader.dataset.pipeline.3.transforms'
    options += [f'{pipe}.0.0.scales=[(128,96)]',
                f'{pipe}.1.0.scales=[(128,80)]',
                f'{pipe}.1.1.crop_size=(48,64)',
                f'{pipe}.1.2.scales=[(128,96)]']
    for split in ('val', 'test'):
        options.append(f'{split}_dataloader.dataset.pipeline.1.scale='
                       '(128,96)')
    return options


# coco_root and ade_root override the tiny sets of tests/conftest.py: the
# paper configs need COCO's 80 classes, and images of 64 pixels here.
def generated(tmp_path_factory, kind, **sizes):
    root = tmp_path_factory.mktemp(kind) / kind
    generate_synthetic_dataset(kind, str(root), size=64, **sizes)
    return root


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = generated(tmp_path_factory, 'coco', num_train=1, num_val=2)
    # The paper config keeps COCO's 80 classes: name the shapes' categories
    # after the first four, and list the other 76.
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    for split in ('train', 'val'):
        ann = json.loads((root / 'annotations' /
                          f'instances_{split}.json').read_text())
        assert [c['id'] for c in ann['categories']] == [1, 2, 3, 4]
        ann['categories'] = [dict(id=i + 1, name=name)
                             for i, name in enumerate(names)]
        (root / 'annotations' / f'instances_{split}{COCO80}.json').write_text(
            json.dumps(ann))
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    # Two images: UperNet's pooling module needs a batch of 2 to train.
    return generated(tmp_path_factory, 'ade', num_train=2, num_val=1)


def ade_options(root):
    options = [f'{split}_dataloader.dataset.data_root={root}/'
               for split in ('train', 'val', 'test')]
    return options + [
        'train_dataloader.dataset.pipeline.2.scale=(256,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'model.data_preprocessor.size=(64,64)'
    ]


def assert_trained_one_iteration(output):
    losses = re.findall(r'Epoch\(train\)\s*\[1\]\[1/1\].*?\bloss: ([\d.]+)|'
                        r'Iter\(train\)\s*\[1/\d+\].*?\bloss: ([\d.]+)',
                        output)
    assert losses, output[-4000:]
    assert all(torch.isfinite(torch.tensor(float(a or b)))
               for a, b in losses)
    reports = [line for line in output.splitlines()
               if 'has no per-stage output norms' in line]
    assert len(reports) == 1, reports
    assert all(key in reports[0] for key in OUTPUT_NORMS)


@pytest.mark.parametrize('task', ['det', 'seg'])
@pytest.mark.parametrize('source', ['converted', 'as-released', 'by-url'])
def test_imagenet_release_initialises_the_paper_config(
        s_imagenet_release, coco_root, ade_root, tmp_path, monkeypatch, task,
        source):
    """tools/train.py trains the paper config from the ImageNet release:
    converted, as released, or as released and read from its URL (served
    here on loopback; the configs name the Hugging Face URL)."""
    config, data = ((DET_CONFIG, coco_options(coco_root)) if task == 'det'
                    else (SEG_CONFIG, ade_options(ade_root)))
    if task == 'seg':
        run = [*small_run(tmp_path / 'work', 2), 'train_cfg.max_iters=1']
    else:
        run = [*small_run(tmp_path / 'work', 1), 'train_cfg.max_epochs=1']
    weights = s_imagenet_release
    if source == 'converted':
        weights = tmp_path / 'stvit_r_swin_s_in1k_mm.pth'
        output = run_tool('tools/model_converters/stvit_r_official_to_mm.py',
                          s_imagenet_release, weights, '--config', config)
        assert 'every key and shape matches' in output
    if source == 'by-url':
        local_only(monkeypatch, tmp_path / 'torch_home')
        with serving(s_imagenet_release.parent) as base:
            output = run_tool(
                'tools/train.py', config, *run, *data,
                f'model.backbone.init_cfg.checkpoint={base}/'
                f'{s_imagenet_release.name}')
        cached = tmp_path / 'torch_home/hub/checkpoints' / (
            s_imagenet_release.name)
        assert cached.read_bytes() == s_imagenet_release.read_bytes()
    else:
        output = run_tool('tools/train.py', config, *run, *data,
                          f'model.backbone.init_cfg.checkpoint={weights}')
    assert_trained_one_iteration(output)


@pytest.mark.parametrize('config', [DET_CONFIG,
                                    'configs/cascade_stvit_r_swin_b_3x.py'])
def test_detector_heads_are_named_as_in_mmdet_2_11(config):
    """Every non-backbone key and shape of the mmdet 3.3 model equals the
    released detector's, as read from mmdet 2.11's source."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not k.startswith('backbone.')}
    assert ours == release_detector_keys(
        neck_in=tuple(cfg.model.neck.in_channels))


def plausible_tensor(key, shape):
    """Random weights that a trained layer could hold (BatchNorm statistics
    included: a negative running variance would give NaNs)."""
    if key.endswith('num_batches_tracked'):
        return torch.tensor(1000)
    if key.endswith('running_var'):
        return torch.rand(shape) + 0.5
    if key.endswith(('running_mean', 'bias')):
        return 0.01 * torch.randn(shape)
    if len(shape) == 1:  # norm weights
        return 1 + 0.1 * torch.randn(shape)
    return torch.randn(shape) / math.prod(shape[1:])**0.5


def test_coco_release_converts_and_evaluates(s_imagenet_release, coco_root,
                                             tmp_path):
    torch.manual_seed(0)
    backbone = STViTRSwin(**S)
    backbone.init_weights()
    others = {k: plausible_tensor(k, shape)
              for k, shape in release_detector_keys().items()}
    src = tmp_path / ('cascade_mask_rcnn_swin_small_patch4_window7_mstrain_'
                      '480-800_giou_4conv1f_adamw_3x_coco.pth')
    save_detector_release(src, detection_backbone_release(
        backbone.state_dict()), others, config_text='model = dict()')
    dst = tmp_path / 'cascade_stvit_r_swin_s_3x_coco.pth'
    output = run_tool('tools/model_converters/stvit_r_official_to_mm.py',
                      src, dst, '--config', DET_CONFIG)
    assert 'every key and shape matches' in output
    output = run_tool('tools/test.py', DET_CONFIG, dst, '--work-dir',
                      tmp_path / 'work', '--cfg-options',
                      *coco_options(coco_root),
                      'test_dataloader.num_workers=0',
                      'test_dataloader.persistent_workers=False',
                      # Random weights score every class alike (~1/81):
                      # keep the detections so that there is something
                      # to evaluate.
                      'model.test_cfg.rcnn.score_thr=0')
    assert re.search(r'coco/bbox_mAP: -?[\d.]+', output), output[-4000:]
    assert re.search(r'coco/segm_mAP: -?[\d.]+', output), output[-4000:]
