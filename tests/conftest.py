"""Fixtures shared across the suite.

* the golden fixtures in ``tests/data``: ``parity`` (the released code's
  outputs) and ``imagenet_release_weights`` (its ImageNet-layout state
  dicts), loaded once per test module;
* tiny datasets written by the package's generator
  (:func:`stvit_mm.datasets.generate_synthetic_dataset`), once per session
  and read-only: ``coco_root`` and ``ade_root`` (the quickstart layouts)
  and ``retinanet_data_root`` (the tiny RetinaNet's, see
  :mod:`helpers.tiny_configs`);
* ``tiny_configs``: the quickstart configs with smaller images;
* ``tool_error``: a tool's exit message, run in-process; ``marker``: a file
  that a crafted pickle must never create.

Paths and plain helpers are in :mod:`helpers` (importable through
``pythonpath = tests`` in ``pytest.ini``).
"""
import pytest
import torch

from helpers.paths import (IMAGENET_RELEASE_WEIGHTS, PARITY, QUICKSTART_DET,
                           QUICKSTART_SEG, REPO)
from helpers.tiny_configs import RETINA_DATA, tiny_config_text
from helpers.tools import exit_message
from stvit_mm.datasets import generate_synthetic_dataset

#: The tiny sets of the tool tests: 4 training images (one batch of 2 per
#: process in a 2-process run), 2 validation images of 96 pixels.
TINY_DATA = dict(num_train=4, num_val=2, size=96, seed=0)


# ---------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def parity():
    """``tests/data/stvit_r_official_parity.pth``: per unit, the released
    code's config, ``state_dict`` and input/output ``cases``."""
    return torch.load(PARITY, weights_only=True)


@pytest.fixture(scope='module')
def imagenet_release_weights():
    """``tests/data/stvit_r_imagenet_parity.pth``: the released
    classification code's models ``model_a`` / ``model_b`` (``config``,
    ``state_dict``, ``cases`` with inputs, logits and stage outputs)."""
    return torch.load(IMAGENET_RELEASE_WEIGHTS, weights_only=True)


# ---------------------------------------------------------------------------
# Tiny datasets and configs
# ---------------------------------------------------------------------------
def _synthetic(tmp_path_factory, kind, name, params):
    root = tmp_path_factory.mktemp('data') / name
    assert generate_synthetic_dataset(kind, str(root), **params)
    return root


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory):
    """A tiny COCO set in the quickstart's layout (``TINY_DATA``)."""
    return _synthetic(tmp_path_factory, 'coco', 'tiny_coco', TINY_DATA)


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    """A tiny ADE20K-layout set (``TINY_DATA``), 0 = background."""
    return _synthetic(tmp_path_factory, 'ade', 'tiny_ade', TINY_DATA)


@pytest.fixture(scope='session')
def retinanet_data_root(tmp_path_factory):
    """The data of :func:`helpers.tiny_configs.tiny_retinanet_cfg`."""
    return str(
        _synthetic(tmp_path_factory, 'coco', 'tiny_retinanet', RETINA_DATA))


@pytest.fixture(scope='session')
def tiny_configs(tmp_path_factory):
    root = tmp_path_factory.mktemp('configs')
    det = root / 'tiny_quickstart_coco.py'
    seg = root / 'tiny_quickstart_ade.py'
    det.write_text(tiny_config_text(REPO / QUICKSTART_DET, 'det'))
    seg.write_text(tiny_config_text(REPO / QUICKSTART_SEG, 'seg'))
    return dict(det=det, seg=seg)


# ---------------------------------------------------------------------------
# Tools and crafted checkpoints
# ---------------------------------------------------------------------------
@pytest.fixture
def tool_error(monkeypatch):
    """``tool_error(func, *args, **kwargs)`` runs what ``tools/train.py``
    (``run_train``) or ``tools/test.py`` (``run_test``) runs in-process from
    the repository root, like a user, and returns the message the tool
    exits with; it fails if the tool gets as far as building a Runner."""
    import mmengine.runner

    def no_runner(*args, **kwargs):
        raise AssertionError('reached Runner construction')

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(mmengine.runner.Runner, 'from_cfg', no_runner)
    return exit_message


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / 'pwned'
    yield str(path)
    assert not path.exists(), 'the checkpoint ran code'
