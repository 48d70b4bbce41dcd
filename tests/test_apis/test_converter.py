"""tools/model_converters/stvit_r_official_to_mm.py on both kinds of release:
an ImageNet classifier checkpoint and an mmdet 2.x Cascade Mask R-CNN."""
import argparse
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

import stvit_mm  # noqa: F401
from helpers.paths import CONVERTER, REPO

MAIN_CONFIG = osp.join(REPO, 'configs', 'cascade_stvit_r_swin_s_3x.py')


def convert(*args):
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope='module')
def unit(parity):
    return parity['unit1']


@pytest.fixture
def tiny_detector_config(tmp_path, unit):
    """The main COCO config with the fixture's backbone size."""
    cfg = unit['config']
    path = tmp_path / 'tiny_cascade.py'
    path.write_text(
        f"_base_ = [{MAIN_CONFIG!r}]\n"
        "model = dict(\n"
        f"    backbone=dict(embed_dims={cfg['embed_dim']}, "
        f"depths={tuple(cfg['depths'])}, num_heads={tuple(cfg['num_heads'])},"
        " init_cfg=None),\n"
        "    neck=dict(in_channels=[16, 32, 64, 128]))\n")
    return str(path)


def build_detector(config):
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def test_detector_release_converts_and_loads_strictly(tmp_path, unit,
                                                      tiny_detector_config):
    torch.manual_seed(0)
    heads = {k: v for k, v in build_detector(
        tiny_detector_config).state_dict().items()
             if not k.startswith('backbone.')}
    release = {f'backbone.{k}': v for k, v in unit['state_dict'].items()}
    release.update(heads)  # mmdet 2.11 and 3.3 name these modules alike
    src, dst = tmp_path / 'release.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': release,
                'meta': {'mmdet_version': '2.11.0',
                         'args': argparse.Namespace(lr=1e-4)}}, src)

    proc = convert(src, dst, '--config', tiny_detector_config)
    assert proc.returncode == 0, proc.stderr
    assert 'every key and shape matches' in proc.stdout

    detector = build_detector(tiny_detector_config).eval()
    load_checkpoint(detector, str(dst), strict=True)  # the path test.py uses
    case = unit['cases'][1]
    with torch.no_grad():
        feats = detector.backbone(case['input'])
    for out, expected in zip(feats, case['outputs']):
        err = (out - expected).abs().max() / expected.abs().max()
        assert err < 1e-4


def test_release_that_does_not_fit_the_config_is_refused(
        tmp_path, unit, tiny_detector_config):
    release = {f'backbone.{k}': v for k, v in unit['state_dict'].items()}
    release['roi_head.bbox_head.0.fc_cls.weight'] = torch.zeros(3, 3)
    src = tmp_path / 'release.pth'
    torch.save({'state_dict': release}, src)
    proc = convert(src, tmp_path / 'out.pth', '--config',
                   tiny_detector_config)
    assert proc.returncode != 0
    assert 'converted, does not fit the model of' in proc.stderr
    assert 'roi_head.bbox_head.0.fc_cls.weight' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_not_an_stvit_checkpoint_is_refused(tmp_path):
    from mmdet.models.backbones import SwinTransformer
    src = tmp_path / 'swin.pth'
    torch.save({'state_dict': SwinTransformer(
        embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
        window_size=7).state_dict()}, src)
    proc = convert(src, tmp_path / 'out.pth')
    assert proc.returncode != 0
    assert 'holds no released STViT-R-Swin backbone' in proc.stderr


def test_existing_destination_is_kept_unless_overwrite(tmp_path, unit):
    src, dst = tmp_path / 'release.pth', tmp_path / 'out.pth'
    torch.save({'model': unit['state_dict']}, src)
    dst.write_text('precious')
    proc = convert(src, dst)
    assert proc.returncode != 0 and 'pass --overwrite' in proc.stderr
    assert dst.read_text() == 'precious'
    assert convert(src, dst, '--overwrite').returncode == 0
    assert 'state_dict' in torch.load(dst, weights_only=True)


def test_crafted_release_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            import os
            return (os.system, (f'touch {marker}', ))

    src = tmp_path / 'evil.pth'
    torch.save({'model': {'w': torch.zeros(1)}, 'x': Payload()}, src)
    proc = convert(src, tmp_path / 'out.pth')
    assert proc.returncode != 0
    assert 'could run code' in proc.stderr
    assert not marker.exists()
