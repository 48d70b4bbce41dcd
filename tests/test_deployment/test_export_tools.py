"""The deployment tools as a user runs them: ``pytorch2onnx.py`` exports a
briefly trained UperNet + STViT-R-Swin (the quickstart at a quarter of its
size) whole, a detector's feature pyramid and a backbone; ONNX Runtime gives
PyTorch's labels and mIoU on the generated ADE20K-layout val images
(``onnx_inference.py --eval``) and draws pictures; bad input is refused with
nothing written.

Each export takes 30-90 s on two cores, so every export here is made once
per module and shared.
"""
import json
import re

import mmcv
import numpy as np
import pytest

from helpers.tools import run_tool, seg_data_options, short_run_options
from helpers.tiny_configs import tiny_retinanet_cfg
from stvit_mm.apis.label_pictures import panel_scale
from stvit_mm.deployment import OnnxMismatchError, export_config
from stvit_mm.errors import ConfigError, InputError
from stvit_mm.utils import CheckpointMismatchError

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

EXPORT = 'tools/deployment/pytorch2onnx.py'
INFER = 'tools/deployment/onnx_inference.py'


@pytest.fixture(scope='module')
def trained_seg(ade_root, tiny_configs, tmp_path_factory):
    """The tiny UperNet trained for 30 iterations: (config, checkpoint)."""
    work = tmp_path_factory.mktemp('seg_train')
    run_tool('tools/train.py', tiny_configs['seg'], '--work-dir', work,
             '--cfg-options', *seg_data_options(ade_root),
             *short_run_options(30), timeout=600)
    return tiny_configs['seg'], work / 'iter_30.pth'


@pytest.fixture(scope='module')
def seg_onnx(trained_seg, tmp_path_factory):
    config, checkpoint = trained_seg
    out = tmp_path_factory.mktemp('seg_onnx') / 'upernet.onnx'
    output = run_tool(EXPORT, config, checkpoint, '--out', out, '--shape',
                      64, 96, timeout=600)
    return out, output


def test_segmentor_export_matches_pytorch(seg_onnx):
    out, output = seg_onnx
    assert out.is_file()
    assert 'image (BGR, 0..255) -> logits at input resolution' in output
    errors = re.findall(r'at \((\d+), 3, (\d+), (\d+)\): relative error '
                        r'([0-9.e+-]+)', output)
    # The requested size, and a batch of 2 at another size (dynamic).
    assert [e[:3] for e in errors] == [('1', '64', '96'), ('2', '45', '55')]
    assert all(float(e[3]) <= 1e-4 for e in errors), output


def test_segmentor_onnx_evaluates_like_pytorch(trained_seg, seg_onnx,
                                               ade_root):
    config, checkpoint = trained_seg
    output = run_tool(INFER, config, seg_onnx[0], '--eval', '--checkpoint',
                      checkpoint, '--cfg-options',
                      *seg_data_options(ade_root)[1:2], timeout=600)
    result = json.loads(output[output.index('{'):output.rindex('}') + 1])
    assert result['pixels'] > 0
    assert result['same_label'] >= 0.999, result
    assert abs(result['onnx']['mIoU'] - result['pytorch']['mIoU']) <= 0.1
    assert result['pytorch']['mIoU'] > 0


def test_segmentor_onnx_draws_an_image(trained_seg, seg_onnx, ade_root,
                                       tmp_path):
    config, _ = trained_seg
    image = next((ade_root / 'images' / 'validation').iterdir())
    out = tmp_path / 'vis.png'
    output = run_tool(INFER, config, seg_onnx[0], image, '--out', out)
    assert 'label map drawn into' in output
    height, width = mmcv.imread(str(image)).shape[:2]
    scale = panel_scale((height, width))
    alone = mmcv.imread(str(out), channel_order='rgb')
    # The prediction at 512 px or more, above its caption and legend.
    H, W = height * scale, width * scale
    assert alone.shape[1] == W >= 512 and alone.shape[0] > H
    # With the ground truth: beside it, and the background it ignores
    # (0 in the png, 255 after reduce_zero_label) drawn as ignored in both
    # panels alike, where the prediction alone paints a class.
    label = (ade_root / 'annotations' / 'validation' /
             (image.stem + '.png'))
    pair = tmp_path / 'pair.png'
    run_tool(INFER, config, seg_onnx[0], image, '--out', pair,
             '--ground-truth', label)
    drawn = mmcv.imread(str(pair), channel_order='rgb')
    assert drawn.shape[1] == 2 * W
    background = mmcv.imread(str(label), flag='unchanged') == 0
    background = background.repeat(scale, 0).repeat(scale, 1)
    assert background.any()
    truth, pred = drawn[:H, :W], drawn[:H, W:]
    assert (truth[background] == pred[background]).all()
    assert (alone[:H][background] != pred[background]).any()


def test_detector_features_and_backbone_export(tiny_configs, coco_root,
                                               tmp_path):
    """Backbone + FPN of the tiny Cascade Mask R-CNN from the image, and the
    backbone alone; ONNX Runtime draws the backbone's activations."""
    feats = tmp_path / 'fpn.onnx'
    output = run_tool(EXPORT, tiny_configs['det'], '--out', feats,
                      '--shape', 64, 80, timeout=600)
    assert 'STViTRSwin + FPN: image (BGR, 0..255) -> 5 pyramid levels' \
        in output
    assert len(re.findall(r'relative error (\S+), (\S+), (\S+), (\S+), '
                          r'(\S+)\n', output + '\n')) == 2

    backbone = tmp_path / 'backbone.onnx'
    run_tool(EXPORT, tiny_configs['det'], '--what', 'backbone', '--out',
             backbone, '--shape', 61, 97, timeout=600)
    image = next((coco_root / 'val').iterdir())
    picture = tmp_path / 'features.png'
    output = run_tool(INFER, tiny_configs['det'], backbone, image, '--out',
                      picture)
    features = np.load(tmp_path / 'features.npz')
    assert sorted(features) == ['stage0', 'stage1', 'stage2', 'stage3']
    assert features['stage0'].shape[1] == 32  # the quickstart's width
    # The image beside four activation maps, at the image's aspect ratio.
    drawn, original = mmcv.imread(str(picture)), mmcv.imread(str(image))
    assert drawn.shape[1] % 5 == 0
    assert abs(drawn.shape[1] / 5 / drawn.shape[0]
               - original.shape[1] / original.shape[0]) < 0.05


# ---------------------------------------------------------------------------
# Bad input: refused with a message naming it, nothing written
# ---------------------------------------------------------------------------
def test_existing_out_is_refused_before_any_work(tiny_configs, tmp_path):
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'mine')
    with pytest.raises(InputError, match=f'{out} exists; pass --force'):
        export_config(str(tiny_configs['seg']), str(out))
    assert out.read_bytes() == b'mine'


def test_unknown_what_is_refused(tiny_configs, tmp_path):
    out = tmp_path / 'model.onnx'
    with pytest.raises(ConfigError, match="--what 'neck'"):
        export_config(str(tiny_configs['seg']), str(out), what='neck')
    assert not out.exists()


def test_unsupported_backbone_is_refused(retinanet_data_root, tmp_path):
    config = tmp_path / 'retinanet.py'
    tiny_retinanet_cfg(retinanet_data_root, str(tmp_path)).dump(str(config))
    out = tmp_path / 'model.onnx'
    with pytest.raises(ConfigError, match="backbone 'ResNet' is not "
                       'supported'):
        export_config(str(config), str(out))
    assert not out.exists()


def test_checkpoint_for_another_model_is_refused(trained_seg, tiny_configs,
                                                 tmp_path):
    _, seg_checkpoint = trained_seg
    out = tmp_path / 'model.onnx'
    with pytest.raises(CheckpointMismatchError) as excinfo:
        export_config(str(tiny_configs['det']), str(out),
                      str(seg_checkpoint))
    message = str(excinfo.value)
    assert str(seg_checkpoint) in message
    assert re.search(r'unexpected in the checkpoint \(\d+\): .*decode_head',
                     message)
    assert re.search(r'missing in the checkpoint \(\d+\): .*neck',
                     message)
    assert not out.exists()


def test_mismatch_in_onnx_runtime_writes_nothing(tiny_configs, tmp_path):
    """A tolerance no float graph meets: the export is traced and checked,
    the check fails, and the file is not written."""
    out = tmp_path / 'backbone.onnx'
    with pytest.raises(OnnxMismatchError, match='differs from the PyTorch'):
        export_config(str(tiny_configs['seg']), str(out), what='backbone',
                      shape=(1, 3, 40, 40), dynamic=False, rtol=0.)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_tool_reports_errors_in_one_line(tiny_configs, tmp_path):
    import subprocess
    import sys
    from helpers.paths import REPO
    out = tmp_path / 'x.onnx'
    out.write_text('')
    proc = subprocess.run([sys.executable, EXPORT, str(tiny_configs['seg']),
                           '--out', str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f'pytorch2onnx.py: error: --out {out} exists' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert out.read_text() == ''
