"""tools/image_demo.py (:func:`stvit_mm.apis.inference.image_demo`) on one
generated image with briefly built quickstart models."""
import cv2
import numpy as np
import pytest
import torch

from helpers.analysis import run_analysis_tool as run_tool
from helpers.paths import REPO
from stvit_mm.analysis import build_model
from stvit_mm.apis import load_config
from stvit_mm.apis.inference import image_demo

QUICKSTART_DET = REPO / 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = REPO / 'configs/quickstart/stvit_r_swin_quickstart_ade.py'


# ---------------------------------------------------------------------------
# image_demo.py
# ---------------------------------------------------------------------------
def run_image_demo(*args):
    """The tool as a user runs it: its exit status and stderr."""
    return run_tool('tools/image_demo.py', *args)


@pytest.fixture(scope='module')
def demo_files(tmp_path_factory):
    """A test image and random-init checkpoints of the quickstart models."""
    root = tmp_path_factory.mktemp('demo')
    rng = np.random.default_rng(0)
    image = rng.integers(30, 80, (120, 160, 3)).astype(np.uint8)
    cv2.rectangle(image, (20, 30), (70, 90), (40, 40, 230), -1)
    cv2.circle(image, (120, 60), 25, (40, 230, 150), -1)
    cv2.imwrite(str(root / 'shapes.jpg'), image)
    torch.manual_seed(0)
    for name, config in (('det', QUICKSTART_DET), ('seg', QUICKSTART_SEG)):
        model = build_model(load_config(str(config)))
        torch.save({'state_dict': model.state_dict()},
                   str(root / f'{name}.pth'))
    return root


@pytest.mark.parametrize('task,config', [('det', QUICKSTART_DET),
                                         ('seg', QUICKSTART_SEG)])
def test_demo_draws_predictions(demo_files, tmp_path, task, config):
    image = demo_files / 'shapes.jpg'
    out = tmp_path / 'out' / f'{task}.png'
    # Random weights: score threshold 0 so that detections are drawn.
    message = image_demo(str(image), str(config),
                         str(demo_files / f'{task}.pth'), out_file=str(out),
                         score_thr=0)
    assert str(out) in message  # what the tool prints
    drawn, original = cv2.imread(str(out)), cv2.imread(str(image))
    assert drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original.astype(int)).mean() > 1


@pytest.mark.parametrize('missing', ['image', 'config', 'checkpoint'])
def test_demo_missing_paths(demo_files, tmp_path, missing):
    paths = dict(image=str(demo_files / 'shapes.jpg'),
                 config=str(QUICKSTART_DET),
                 checkpoint=str(demo_files / 'det.pth'))
    paths[missing] = str(tmp_path / 'absent')
    result = run_image_demo(paths['image'], paths['config'],
                            paths['checkpoint'])
    assert result.returncode == 1
    assert (f'{missing} file not found: {paths[missing]}'
            in result.stderr)


def test_demo_unreadable_image(demo_files, tmp_path):
    fake = tmp_path / 'fake.jpg'
    fake.write_text('not an image')
    result = run_image_demo(str(fake), str(QUICKSTART_DET),
                            str(demo_files / 'det.pth'),
                            '--out-file', str(tmp_path / 'x.png'))
    assert result.returncode == 1
    assert 'cannot read image' in result.stderr
    assert not (tmp_path / 'x.png').exists()
