"""The ImageNet classifier through the deployment tools: ``pytorch2onnx.py``
exports the S config's mmpretrain ``ImageClassifier`` (shrunk to width 16)
whole, from the image as loaded to its logits, with a dynamic batch; ONNX
Runtime gives the logits and scores of mmpretrain's own ``test_step`` (its
data preprocessor: BGR -> RGB, mean, std) on images through the config's
test pipeline, at a batch of 1 and of 3; ``onnx_inference.py`` prints the
top 5; the backbone alone exports too; bad input is refused with nothing
written.

Each export takes about a minute on two cores: made once per module.
"""
import re
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch

from helpers.paths import REPO
from helpers.tools import run_tool
from stvit_mm.apis import load_config
from stvit_mm.deployment import OrtModel
from stvit_mm.deployment.model_export import input_shape

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

EXPORT = 'tools/deployment/pytorch2onnx.py'
INFER = 'tools/deployment/onnx_inference.py'
S_CONFIG = REPO / 'configs' / 'imagenet' / 'stvit_r_swin_s_16xb64_in1k.py'
NUM_CLASSES = 10
#: Image sizes (H, W) the test pipeline resizes (short side 256) and crops
#: (224) to the classifier's input.
IMAGE_SIZES = [(240, 320), (300, 260), (224, 224)]


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    """(config, checkpoint, model): the S config at width 16 with 10
    classes, and random weights, built as mmengine's Runner builds it (the
    config's top-level data preprocessor in the model)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    root = tmp_path_factory.mktemp('classifier')
    config = root / 'stvit_r_swin_w16_in1k.py'
    config.write_text(
        f"_base_ = '{S_CONFIG}'\n"
        "model = dict(backbone=dict(embed_dims=16, depths=(2, 2, 6, 2), "
        "num_heads=(1, 2, 4, 8), drop_path_rate=0.), "
        f"head=dict(in_channels=128, num_classes={NUM_CLASSES}))\n"
        f"data_preprocessor = dict(num_classes={NUM_CLASSES})\n")
    cfg = load_config(str(config))
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model).eval()
    checkpoint = root / 'cls.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    return config, checkpoint, model


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(IMAGE_SIZES):
        # Smooth colour ramps plus noise: the channels differ, so a swapped
        # channel order changes the logits.
        ramp = np.linspace(0, 1, w)[None, :, None] * [40, 160, 250]
        noise = rng.integers(0, 60, (h, w, 3))
        paths.append(root / f'image{i}.png')
        mmcv.imwrite((ramp + noise).clip(0, 255).astype(np.uint8),
                     str(paths[-1]))
    return paths


@pytest.fixture(scope='module')
def cls_onnx(classifier, tmp_path_factory):
    """The classifier exported whole, at the default size: (path, tool
    output)."""
    config, checkpoint, _ = classifier
    out = tmp_path_factory.mktemp('cls_onnx') / 'classifier.onnx'
    output = run_tool(EXPORT, config, checkpoint, '--out', out, timeout=600)
    return out, output


def mmpretrain_batch(config, paths):
    """The images through the config's test pipeline, collated as the
    test dataloader does."""
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope
    cfg = load_config(str(config))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        return pseudo_collate([pipeline(dict(img_path=str(p)))
                               for p in paths])


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_export_report(cls_onnx):
    out, output = cls_onnx
    assert ('ImageClassifier + STViTRSwin: image (BGR, 0..255) -> logits '
            f'(N, {NUM_CLASSES})') in output
    assert 'input: images (N, 3, H, W), dynamic batch\n' in output
    checks = re.findall(r'at \((\d+), 3, (\d+), (\d+)\): relative error '
                        r'([0-9.e+-]+)', output)
    # The default size of a classifier, and another batch at that size.
    assert [c[:3] for c in checks] == [('1', '224', '224'),
                                       ('2', '224', '224')]
    assert all(float(c[3]) <= 1e-4 for c in checks), output
    session = OrtModel(str(out))
    assert session.output_names == ['logits']
    graph_input = session.session.get_inputs()[0]
    assert graph_input.shape[1:] == [3, 224, 224]
    assert isinstance(graph_input.shape[0], str)  # dynamic batch
    assert session.session.get_outputs()[0].shape[1] == NUM_CLASSES


@pytest.mark.parametrize('batch', [1, 3])
def test_onnx_gives_mmpretrain_test_step(classifier, cls_onnx, images,
                                         batch):
    """From the image file on: ONNX Runtime on the pipeline's uint8 BGR
    crops against mmpretrain's test_step (its data preprocessor, model and
    softmax) and the logits before the softmax."""
    config, _, model = classifier
    data = mmpretrain_batch(config, images[:batch])
    onnx_logits = torch.from_numpy(
        OrtModel(str(cls_onnx[0]))(torch.stack(data['inputs']))[0])
    assert onnx_logits.shape == (batch, NUM_CLASSES)
    with torch.no_grad():
        samples = model.test_step(data)
        logits = model(model.data_preprocessor(data)['inputs'],
                       mode='tensor')
    assert rel_err(onnx_logits, logits) <= 1e-4
    scores = torch.stack([s.pred_score for s in samples])
    assert (onnx_logits.softmax(1) - scores).abs().max() <= 1e-5
    assert onnx_logits.argmax(1).tolist() == [
        s.pred_label.item() for s in samples]


def test_onnx_inference_prints_the_top_5(classifier, cls_onnx, images):
    config, _, model = classifier
    output = run_tool(INFER, config, cls_onnx[0], images[0])
    assert f'top 5 of {NUM_CLASSES} classes:' in output
    printed = re.findall(r'^\d\. ([0-9.]+) class (\d+)$', output, re.M)
    with torch.no_grad():
        score = model.test_step(mmpretrain_batch(config,
                                                 images[:1]))[0].pred_score
    best = score.argsort(descending=True)[:5]
    assert [int(c) for _, c in printed] == best.tolist()
    assert [float(s) for s, _ in printed] == pytest.approx(
        score[best].tolist(), abs=1e-4)


def test_classifier_backbone_export(classifier, images, tmp_path):
    """``--what backbone`` over an existing file with ``--force``: the
    normalised image to stage 3's (N, 128, 7, 7); onnx_inference
    normalises with the classifier's data preprocessor."""
    config, checkpoint, model = classifier
    out = tmp_path / 'backbone.onnx'
    out.write_bytes(b'old')
    output = run_tool(EXPORT, config, checkpoint, '--what', 'backbone',
                      '--out', out, '--force', timeout=600)
    assert 'STViTRSwin: normalised image -> 1 feature maps' in output
    assert 'outputs: stage3\n' in output
    picture = tmp_path / 'features.png'
    run_tool(INFER, config, out, images[1], '--out', picture)
    stage3 = torch.from_numpy(np.load(tmp_path / 'features.npz')['stage3'])
    with torch.no_grad():
        inputs = model.data_preprocessor(
            mmpretrain_batch(config, images[1:2]))['inputs']
        expected = model.backbone(inputs)[0]
    assert stage3.shape == (1, 128, 7, 7)
    assert rel_err(stage3, expected) <= 1e-4


def _tool_error(*args):
    """The tool's stderr, which must be one line (the libraries' import
    warnings silenced)."""
    proc = subprocess.run([sys.executable, '-W', 'ignore', EXPORT,
                           *map(str, args)],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_input_is_refused_in_one_line(classifier, tmp_path):
    config, checkpoint, _ = classifier
    out = tmp_path / 'x.onnx'
    out.write_text('mine')
    assert f'--out {out} exists; pass --force' in _tool_error(
        config, checkpoint, '--out', out)
    assert out.read_text() == 'mine'
    labels = tmp_path / 'labels.onnx'
    line = _tool_error(config, '--out', labels, '--seg-output', 'labels')
    assert line.startswith('pytorch2onnx.py: error: --seg-output labels: '
                           'only a segmentor exported whole')
    assert 'exports a classifier' in line
    assert not labels.exists()


def test_default_size_by_task():
    seg = load_config('configs/upernet_stvit_r_swin_s_160k_ade20k.py')
    cls = load_config(str(S_CONFIG))
    assert input_shape(seg, (2, 3, None, None)) == (2, 3, 512, 512)
    assert input_shape(cls, (2, 3, None, None)) == (2, 3, 224, 224)
    assert input_shape(cls, (1, 3, 96, 64)) == (1, 3, 96, 64)
