"""The ImageNet classifier through the project's tools: the released weights
converted and evaluated by ``tools/test.py``, the classification quickstart
config trained by ``tools/train.py``, and the checkpoint it writes
initialising the detection backbone as the ImageNet release does."""
import json
import re

import pytest
import torch

from helpers.paths import REPO
from helpers.release_layout import save_imagenet_release
from helpers.tools import exit_message, run_tool, short_run_options
from stvit_mm.apis import run_test
from stvit_mm.datasets import generate_synthetic_dataset
from stvit_mm.models import STViTRSwin

QUICKSTART_CLS = 'configs/quickstart/stvit_r_swin_quickstart_in1k.py'
S_CONFIG = 'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py'
CONVERTER = 'tools/model_converters/stvit_r_official_to_mm.py'
#: The released code's model_a (fixture) in the S config.
MODEL_A = [
    'model.backbone.embed_dims=16', 'model.backbone.depths=[2,2,6,2]',
    'model.backbone.num_heads=[1,2,4,8]', 'model.head.in_channels=128',
    'model.head.num_classes=10', 'model.backbone.drop_path_rate=0.'
]
#: The quickstart's tiny set: 2 images per class to train, 1 to test.
DATA = dict(num_train=8, num_val=4, size=64, seed=0)


@pytest.fixture(scope='module')
def imagenet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'tiny_imagenet'
    assert generate_synthetic_dataset('imagenet', str(root), **DATA)
    return root


def data_options(root):
    return [f'{split}_dataloader.dataset.data_root={root}/'
            for split in ('train', 'val', 'test')]


def metrics_of(work_dir):
    """The metrics tools/test.py dumped."""
    records = sorted(work_dir.glob('*/*.json'))
    assert records, list(work_dir.rglob('*'))
    return json.loads(records[-1].read_text())


def test_converted_release_is_evaluated_by_tools_test(
        imagenet_release_weights, imagenet_root, tmp_path):
    """The released code's classifier in the file layout of its training
    script converts, checked key by key against the S config at its sizes,
    and tools/test.py evaluates it on ImageNet-layout data: the top-1 it
    reports is the one the same weights give on the same images in
    process."""
    fixture = imagenet_release_weights['model_a']
    release = tmp_path / 'STViT-R-Swin-T.pth'
    save_imagenet_release(release, fixture['state_dict'])
    config = tmp_path / 'model_a_in1k.py'
    config.write_text(
        f"_base_ = '{REPO / S_CONFIG}'\n"
        "model = dict(backbone=dict(embed_dims=16, depths=(2, 2, 6, 2), "
        "num_heads=(1, 2, 4, 8), drop_path_rate=0.), "
        "head=dict(in_channels=128, num_classes=10))\n"
        "data_preprocessor = dict(num_classes=10)\n")
    converted = tmp_path / 'cls.pth'
    output = run_tool(CONVERTER, release, converted, '--classifier',
                      '--config', config)
    assert 'every key and shape matches' in output
    assert 'head.* -> head.fc.*' in output
    work = tmp_path / 'test'
    options = [*data_options(imagenet_root),
               'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False',
               'test_dataloader.batch_size=2']
    run_tool('tools/test.py', config, converted, '--work-dir', work,
             '--cfg-options', *options)
    top1 = metrics_of(work)['accuracy/top1']

    # The same images through the same test pipeline, in process.
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(config))
    # As the Runner builds it: the config's data preprocessor (mean, std,
    # BGR -> RGB) goes into the model.
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    correct = 0
    lines = (imagenet_root / 'meta' / 'val.txt').read_text().splitlines()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        model.load_state_dict(torch.load(converted,
                                         weights_only=True)['state_dict'])
        model.eval()
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        for line in lines:
            rel, label = line.split()
            data = pipeline(dict(img_path=str(imagenet_root / 'val' / rel)))
            batch = model.data_preprocessor(
                dict(inputs=[data['inputs']], data_samples=None))
            with torch.no_grad():
                logits = model(batch['inputs'], mode='tensor')
            correct += int(logits.argmax(1).item() == int(label))
    assert top1 == pytest.approx(100 * correct / len(lines))


def test_a_mismatched_classifier_is_refused(imagenet_release_weights,
                                            imagenet_root, tmp_path):
    """The S config (width 96) does not take model_a's weights: test.py
    refuses them, naming keys, instead of scoring a half-random model."""
    fixture = imagenet_release_weights['model_a']
    release = tmp_path / 'release.pth'
    save_imagenet_release(release, fixture['state_dict'])
    converted = tmp_path / 'cls.pth'
    run_tool(CONVERTER, release, converted, '--classifier')
    message = exit_message(run_test, S_CONFIG, str(converted),
                           work_dir=str(tmp_path / 'w'),
                           cfg_options={'test_dataloader.dataset.data_root':
                                        str(imagenet_root)})
    assert 'backbone.' in message and 'shape' in message


@pytest.fixture(scope='module')
def trained(imagenet_root, tmp_path_factory):
    """The quickstart config, two iterations of 2 images, then its test."""
    work = tmp_path_factory.mktemp('cls_quickstart')
    output = run_tool('tools/train.py', QUICKSTART_CLS, '--work-dir', work,
                      '--cfg-options', *data_options(imagenet_root),
                      *short_run_options(2), 'train_dataloader.batch_size=2',
                      'default_hooks.logger.interval=1', timeout=600)
    checkpoints = sorted(work.glob('iter_*.pth'))
    assert checkpoints, output[-3000:]
    return work, checkpoints[-1], output


def test_quickstart_config_trains_and_tests(trained, imagenet_root):
    work, checkpoint, output = trained
    losses = re.findall(r'Iter\(train\)\s*\[\s*\d+/2\].*?\bloss: ([\d.]+)',
                        output)
    assert len(losses) == 2, output[-3000:]
    assert all(torch.isfinite(torch.tensor(float(v))) for v in losses)
    run_tool('tools/test.py', QUICKSTART_CLS, checkpoint, '--work-dir',
             work / 'test', '--cfg-options', *data_options(imagenet_root),
             'test_dataloader.num_workers=0',
             'test_dataloader.persistent_workers=False')
    top1 = metrics_of(work / 'test')['accuracy/top1']
    assert 0 <= top1 <= 100


def test_trained_classifier_initialises_the_detection_backbone(trained):
    """As the release's detectors loaded the ImageNet release: the
    classifier (final norm, head) is left out, norm0..norm3 start at weight
    1, bias 0, and every other backbone tensor is the trained one."""
    _, checkpoint, _ = trained
    state = torch.load(checkpoint, weights_only=True)['state_dict']
    detection = STViTRSwin(
        embed_dims=32, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
        init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)))
    from mmengine.logging import MMLogger
    import logging
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_instance('cls_to_det', log_level='INFO')
    logger.addHandler(handler)
    try:
        detection.init_weights()
    finally:
        logger.removeHandler(handler)
    log = '\n'.join(records)
    ours = detection.state_dict()
    loaded = 0
    for key, value in state.items():
        if key.startswith('backbone.') and not key.startswith(
                'backbone.norm3.'):
            assert torch.equal(ours[key[len('backbone.'):]], value), key
            loaded += 1
    assert loaded == len(ours) - 8  # all but norm0..norm3
    for i in range(4):
        assert torch.equal(ours[f'norm{i}.weight'],
                           torch.ones(32 * 2**i))
        assert torch.equal(ours[f'norm{i}.bias'], torch.zeros(32 * 2**i))
    assert 'head.weight' in log and 'norm.weight' in log
    assert 'norm0.weight' in log and 'norm3.bias' in log
