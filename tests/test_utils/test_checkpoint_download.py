"""Checkpoints given by URL: downloaded whole into torch's hub cache, or
refused in one line that names the URL and the way to a local file.

Real HTTP servers on the loopback interface (:mod:`helpers.http_server`)
stand in for Hugging Face: one serves files, one breaks off each download
halfway, and one is down.
"""
import os

import pytest
import torch
from mmengine.config import Config

from helpers.http_server import (BreaksOffHandler, down_server_url,
                                 local_only, serving)
from helpers.paths import REPO
from stvit_mm.apis.preflight import check_pretrained
from stvit_mm.errors import ConfigError
from stvit_mm.utils.checkpoint import (CheckpointDownloadError, cache_path,
                                       fetch_checkpoint)

PAPER_CONFIG = 'configs/cascade_stvit_r_swin_s_3x.py'
NAME = 'STViT-R-Swin-S.pth'


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder with a good checkpoint and a damaged one, torch's hub cache
    in ``tmp_path``."""
    local_only(monkeypatch, tmp_path / 'torch_home')
    folder = tmp_path / 'served'
    folder.mkdir()
    torch.save({'model': {'w': torch.arange(6.)}}, folder / NAME)
    whole = (folder / NAME).read_bytes()
    (folder / 'damaged.pth').write_bytes(whole[:len(whole) // 2])
    return folder


def cache_files(tmp_path):
    folder = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def paper_config_from(url):
    cfg = Config.fromfile(str(REPO / PAPER_CONFIG))
    assert cfg.model.backbone.init_cfg.checkpoint.startswith('https://')
    cfg.model.backbone.init_cfg.checkpoint = url
    return cfg


def test_a_served_file_is_cached_once_and_whole(served, tmp_path):
    with serving(served) as base:
        url = f'{base}/{NAME}'
        path = fetch_checkpoint(url)
    assert path == cache_path(url)
    assert cache_files(tmp_path) == [NAME]
    # Cached: no server needed any more.
    assert fetch_checkpoint(url) == path
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded['model']['w'], torch.arange(6.))


@pytest.mark.parametrize('server, file, reason', [
    ('down', NAME, 'Connection refused'),
    ('breaks off', NAME, r'the server sent \d+ of the \d+ bytes'),
    ('serves', 'damaged.pth', 'gave no usable checkpoint'),
    ('serves', 'missing.pth', 'HTTP 404'),
])
def test_failed_downloads_leave_nothing_and_say_why(served, tmp_path, server,
                                                    file, reason):
    if server == 'down':
        url = f'{down_server_url()}/{file}'
        with pytest.raises(CheckpointDownloadError, match=reason) as e:
            fetch_checkpoint(url)
    else:
        handler = BreaksOffHandler if server == 'breaks off' else None
        with serving(served, *([handler] if handler else [])) as base:
            url = f'{base}/{file}'
            with pytest.raises(CheckpointDownloadError, match=reason) as e:
                fetch_checkpoint(url)
    assert url in str(e.value)
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize('server', ['down', 'breaks off'])
def test_preflight_names_the_url_and_the_local_file_route(
        served, tmp_path, server):
    """What tools/train.py prints before building anything."""
    if server == 'down':
        url = f'{down_server_url()}/{NAME}'
        cfg = paper_config_from(url)
        with pytest.raises(ConfigError) as e:
            check_pretrained(cfg, resuming=False)
    else:
        with serving(served, BreaksOffHandler) as base:
            url = f'{base}/{NAME}'
            cfg = paper_config_from(url)
            with pytest.raises(ConfigError) as e:
                check_pretrained(cfg, resuming=False)
    message = str(e.value)
    assert '\n' not in message
    assert url in message
    assert ('--cfg-options model.backbone.init_cfg.checkpoint=/path/to/'
            f'{NAME}') in message
    assert cache_files(tmp_path) == []


def test_preflight_skips_an_unreachable_url_when_resuming(tmp_path,
                                                          monkeypatch):
    local_only(monkeypatch, tmp_path / 'torch_home')
    cfg = paper_config_from(f'{down_server_url()}/{NAME}')
    check_pretrained(cfg, resuming=True)
    assert cfg.model.backbone.init_cfg is None
