"""The pinned OpenMMLab stack is installed, imports, and mmcv's compiled CPU
ops compute what they should."""
import importlib
import importlib.metadata as metadata
import os.path as osp

import pytest
import torch
from packaging.requirements import Requirement

from helpers.paths import REPO

REQUIREMENTS = REPO / 'requirements.txt'


def _requirements():
    with open(REQUIREMENTS) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [Requirement(line) for line in lines if line]


@pytest.mark.parametrize(
    'module',
    ['torch', 'torchvision.ops', 'mmengine', 'mmcv', 'mmdet', 'mmseg',
     'mmpretrain.models', 'mmpretrain.datasets'])
def test_imports(module):
    importlib.import_module(module)


def test_mmcv_has_compiled_ops():
    ext = importlib.import_module('mmcv._ext')
    assert osp.splitext(ext.__file__)[1] in ('.so', '.pyd')


@pytest.mark.parametrize('req', _requirements(), ids=str)
def test_installed_versions_match_requirements(req):
    installed = metadata.version(req.name)
    assert req.specifier.contains(
        installed, prereleases=True
    ), (f'{req.name} {installed} is installed; requirements.txt pins {req}')


def test_nms_keeps_hand_computed_boxes():
    from mmcv.ops import nms

    boxes = torch.tensor([
        [0., 0., 10., 10.],  # 0: A
        [1., 1., 11., 11.],  # 1: B
        [20., 20., 30., 30.],  # 2: C
        [0., 0., 10., 4.],  # 3: D
        [2., 2., 12., 12.],  # 4: E
    ])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.75])
    # Areas: A, B, C, E = 100, D = 40. Greedy NMS, IoU threshold 0.5, in
    # score order A(.9), B(.8), E(.75), C(.7), D(.6):
    # - A kept.
    # - B: A∩B = [1,1,10,10] = 81, IoU = 81 / (100 + 100 - 81) = 0.68
    #   > 0.5, suppressed.
    # - E: A∩E = [2,2,10,10] = 64, IoU = 64 / 136 = 0.47, kept. (B∩E gives
    #   IoU 0.68, but B was already suppressed, so it does not count.)
    # - C: disjoint from A and E, kept.
    # - D: A∩D = [0,0,10,4] = 40, IoU = 40 / 100 = 0.4;
    #   E∩D = [2,2,10,4] = 16, IoU = 16 / 124 = 0.13; kept.
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 4, 2, 3]
    assert torch.equal(dets[:, :4], boxes[[0, 4, 2, 3]])
    assert torch.allclose(dets[:, 4], scores[[0, 4, 2, 3]])


@pytest.mark.parametrize(
    'aligned, expected',
    [
        # Without alignment the RoI starts at x1 = 2, y1 = 1 and each of the
        # 2x2 bins is 2 pixels wide and high: bin centres x = 3, 5 and
        # y = 2, 4, so f = x + 10 y gives [[23, 25], [43, 45]].
        (False, [[23., 25.], [43., 45.]]),
        # With alignment, pixel centres are at integer coordinates, so the
        # RoI starts half a pixel earlier: x = 2.5, 4.5 and y = 1.5, 3.5.
        (True, [[17.5, 19.5], [37.5, 39.5]]),
    ])
def test_roi_align_on_linear_ramp(aligned, expected):
    from mmcv.ops import RoIAlign

    # f(y, x) = x + 10 y on an 8x8 map. Bilinear interpolation reproduces an
    # affine function exactly, and the average of the 2x2 samples placed
    # symmetrically in a bin is f at the bin centre. The RoI keeps every
    # sample inside the map, where no border clamping happens.
    ys, xs = torch.meshgrid(torch.arange(8.), torch.arange(8.), indexing='ij')
    feat = (xs + 10 * ys)[None, None]
    rois = torch.tensor([[0., 2., 1., 6., 5.]])  # batch index, x1, y1, x2, y2
    roi_align = RoIAlign(
        output_size=(2, 2),
        spatial_scale=1.0,
        sampling_ratio=2,
        pool_mode='avg',
        aligned=aligned)
    out = roi_align(feat, rois)
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor(expected))
