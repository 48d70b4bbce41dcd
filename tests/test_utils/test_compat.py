"""The private mmengine names stvit_mm relies on, and how their absence is
reported (stvit_mm/utils/compat.py)."""
import os.path as osp
import re

import mmcv
import mmengine
import pytest
from mmengine.hooks import CheckpointHook
from mmengine.runner import checkpoint as mmengine_checkpoint

import stvit_mm  # noqa: F401  (routes mmengine's loaders)
from helpers.paths import REPO
from stvit_mm.errors import StvitMMError
from stvit_mm.utils import checkpoint, compat


def test_tested_versions_are_the_pinned_ones():
    with open(osp.join(REPO, 'requirements.txt')) as f:
        pins = dict(re.findall(r'^(mmengine|mmcv)==(\S+)', f.read(), re.M))
    assert pins == compat.TESTED_VERSIONS


def test_every_private_name_exists_in_the_installed_versions():
    assert compat.history_buffer_class().__name__ == 'HistoryBuffer'
    assert compat.checkpoint_hook_save_method() == \
        '_save_checkpoint_with_step'
    # stvit_mm's import routed both loaders through the safe one.
    assert mmengine_checkpoint.load_url is checkpoint.load_url
    assert mmengine_checkpoint.CheckpointLoader._get_checkpoint_loader(
        'some/file.pth') is checkpoint.load_from_local


def test_other_version_warns(monkeypatch):
    monkeypatch.setattr(mmcv, '__version__', '2.2.0')
    with pytest.warns(UserWarning, match=r'mmcv 2\.1\.0 .* mmcv 2\.2\.0'):
        compat.check_versions()


def test_missing_load_url_fails_loudly(monkeypatch):
    monkeypatch.setattr(mmengine, '__version__', '9.9.9')
    monkeypatch.delattr(mmengine_checkpoint, 'load_url')
    with pytest.raises(compat.CompatError) as info:
        compat.rebind_mmengine_load_url(checkpoint.load_url)
    message = str(info.value)
    assert 'mmengine.runner.checkpoint.load_url does not exist' in message
    assert 'mmengine 9.9.9' in message and 'mmengine 0.10.7' in message
    assert 'URL checkpoints' in message
    assert isinstance(info.value, (StvitMMError, ImportError))


def test_missing_hook_method_fails_loudly(monkeypatch):
    monkeypatch.delattr(CheckpointHook, '_save_checkpoint_with_step')
    with pytest.raises(compat.CompatError, match='CheckpointHook.'
                       '_save_checkpoint_with_step does not exist'):
        compat.checkpoint_hook_save_method()


def test_runner_source_without_private_attributes():
    # Only a message depends on it: unknown, not an error.
    assert compat.runner_checkpoint_source(object()) is None
