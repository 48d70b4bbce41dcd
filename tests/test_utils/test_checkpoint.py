"""Checkpoints load with torch's weights-only unpickler, and only that way.

A tiny stock mmdet RetinaNet (:mod:`helpers.tiny_configs`) is trained for
two iterations by the real mmengine ``Runner``; its checkpoint must then
load for testing (``load_from``) and resuming. Crafted pickles
(:mod:`helpers.payloads`) that would run code must be refused on every path
that loads checkpoints, with an error that says why.
"""
import argparse
import copy
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModule
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import stvit_mm  # noqa: F401  (registers the safe globals and loaders)
from helpers.http_server import local_only, serving
from helpers.payloads import (Evals, GetsAttribute, Partial, RunsShell,
                              save_payload)
from helpers.tiny_configs import BASE_LR, WARMUP_START, tiny_retinanet_cfg
from stvit_mm.utils import (CheckpointError, CheckpointNotFoundError, StandIn,
                            StandInDict, load_untrusted_checkpoint)
from stvit_mm.utils.checkpoint.safe_globals import _runner_safe_globals


@pytest.fixture
def weights_only_forced(monkeypatch):
    """Makes every ``torch.load`` weights-only, even one that asks for
    ``weights_only=False``."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')


@pytest.fixture(scope='module')
def trained(retinanet_data_root, tmp_path_factory):
    """Trains the tiny RetinaNet for 2 iterations with the real Runner.

    Returns:
        tuple: The config dict and the path of the iteration-2 checkpoint.
    """
    root = tmp_path_factory.mktemp('runner')
    cfg = tiny_retinanet_cfg(retinanet_data_root, str(root / 'train'))
    Runner.from_cfg(copy.deepcopy(cfg)).train()
    ckpt = osp.join(cfg['work_dir'], 'iter_2.pth')
    assert osp.isfile(ckpt)
    return cfg, ckpt


class _StateAtStart(Hook):
    """Records the runner's state when training starts (after resuming)."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.lr = runner.optim_wrapper.get_lr()['lr'][0]
        optimizer = runner.optim_wrapper.optimizer
        params = [p for g in optimizer.param_groups for p in g['params']]
        # Keyed like ``optimizer.state_dict()['state']``: by parameter index.
        self.momentum = {
            i: optimizer.state[p]['momentum_buffer'].clone()
            for i, p in enumerate(params) if p in optimizer.state
        }


# (a), (b): Runner checkpoints round-trip with weights_only on.


def test_runner_checkpoint_needs_exactly_the_registered_globals(trained):
    _, ckpt = trained
    entries = _runner_safe_globals()
    # The numpy functions are also listed under the other numpy major
    # version's module name, which a checkpoint this numpy wrote cannot need.
    numpy_module = np.float64(0).__reduce__()[0].__module__
    needed = [
        e for e in entries if not isinstance(e, tuple)
        or not e[1].startswith('numpy') or e[1].startswith(numpy_module + '.')
    ]
    assert len(needed) == len(entries) - 2
    saved = torch.serialization.get_safe_globals()
    try:
        for left_out in needed:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(
                [e for e in entries if e is not left_out])
            with pytest.raises(pickle.UnpicklingError):
                torch.load(ckpt, weights_only=True)
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(entries)
        assert torch.load(ckpt, weights_only=True)['meta']['iter'] == 2
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def test_load_from_like_test_py(trained, tmp_path, weights_only_forced):
    cfg, ckpt = trained
    cfg = copy.deepcopy(cfg)
    cfg.update(work_dir=str(tmp_path), load_from=ckpt)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 'coco/bbox_mAP' in metrics
    saved = load_untrusted_checkpoint(ckpt)['state_dict']
    model_state = runner.model.state_dict()
    assert saved.keys() == model_state.keys()
    for name, value in saved.items():
        assert torch.equal(model_state[name], value), name


def test_resume(trained, tmp_path, weights_only_forced):
    cfg, ckpt = trained
    saved = load_untrusted_checkpoint(ckpt)
    cfg = copy.deepcopy(cfg)
    cfg.update(work_dir=str(tmp_path), load_from=ckpt, resume=True)
    cfg['train_cfg']['max_iters'] = 3
    runner = Runner.from_cfg(cfg)
    state = _StateAtStart()
    runner.register_hook(state)
    runner.train()

    assert state.iter == saved['meta']['iter'] == 2
    assert state.lr == saved['optimizer']['param_groups'][0]['lr']
    # The warm-up has moved the lr away from where a fresh run starts.
    assert state.lr != pytest.approx(BASE_LR * WARMUP_START)
    saved_momentum = saved['optimizer']['state']
    assert state.momentum.keys() == saved_momentum.keys()
    assert len(saved_momentum) > 0  # a fresh optimizer has no momentum
    for i, buf in state.momentum.items():
        assert torch.equal(buf, saved_momentum[i]['momentum_buffer']), i
    assert runner.iter == 3


# (c): pickles that would run code are refused on every loading path.


def _touch(path):
    open(path, 'w').close()


class _CallsUnknownFunction:
    """Calls a function from a module the loader does not know."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _touch, (self.marker, )


@pytest.mark.parametrize('payload, name',
                         [(RunsShell, f'{os.name}.system'),
                          (Evals, 'builtins.eval'),
                          (Partial, 'functools.partial'),
                          (GetsAttribute, 'builtins.getattr')])
@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_untrusted_loader_refuses_code(tmp_path, marker, payload, name,
                                       legacy):
    path = save_payload(tmp_path / 'evil.pth', payload(marker), legacy)
    with pytest.raises(CheckpointError) as err:
        load_untrusted_checkpoint(path)
    assert str(err.value) == (
        f'{path} is not a plain checkpoint: its pickle references {name}, '
        'which could run code when loaded; refusing to load it.')


def test_plain_torch_load_refuses_other_getattr(tmp_path):
    path = save_payload(tmp_path / 'getattr.pth', GetsAttribute(None))
    with pytest.raises(pickle.UnpicklingError, match='may only fetch'):
        torch.load(path)


class _TinyModule(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.conv = torch.nn.Conv2d(2, 2, 1)


def test_mmengine_paths_refuse_code(trained, tmp_path, marker):
    path = save_payload(tmp_path / 'evil.pth', RunsShell(marker))
    why = 'could run code when loaded; refusing to load it'
    with pytest.raises(CheckpointError, match=why):
        _load_checkpoint(path)
    with pytest.raises(CheckpointError, match=why):
        load_checkpoint(_TinyModule(), path)
    module = _TinyModule(init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match=why):
        module.init_weights()

    cfg = copy.deepcopy(trained[0])
    cfg.update(work_dir=str(tmp_path / 'work'), load_from=path)
    with pytest.raises(CheckpointError, match=why):
        Runner.from_cfg(cfg).test()


def test_url_checkpoints_load_weights_only(tmp_path, marker, monkeypatch):
    """mmengine loads URLs with torch.hub's ``weights_only=False`` default;
    the registered loader must close that path too."""
    served = tmp_path / 'served'
    served.mkdir()
    save_payload(served / 'evil.pth', RunsShell(marker))
    torch.save({'w': torch.arange(3.)}, served / 'good.pth')
    local_only(monkeypatch, tmp_path / 'torch_home')
    with serving(served) as url:
        good = _load_checkpoint(f'{url}/good.pth', map_location='cpu')
        assert torch.equal(good['w'], torch.arange(3.))
        with pytest.raises(CheckpointError, match='could run code'):
            _load_checkpoint(f'{url}/evil.pth', map_location='cpu')


def test_unknown_callable_becomes_inert_stand_in(tmp_path, marker):
    path = save_payload(tmp_path / 'odd.pth', _CallsUnknownFunction(marker))
    for loaded in (load_untrusted_checkpoint(path), _load_checkpoint(path)):
        record = loaded['meta']
        assert isinstance(record, StandIn)
        assert record.qualname == f'{__name__}._touch'
        assert record.args == (marker, )


# (d): damaged files and files that are not checkpoints.


@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, path)
    return path


@pytest.mark.parametrize(
    'loader', [load_untrusted_checkpoint, _load_checkpoint],
    ids=['untrusted', 'mmengine'])
def test_damaged_files(tmp_path, good_checkpoint, loader):
    data = good_checkpoint.read_bytes()
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.randn(64, 64)},
               legacy,
               _use_new_zipfile_serialization=False)
    cases = {
        'empty.pth': (b'', r'is empty \(0 bytes\).*Download it again'),
        'truncated.pth':
        (data[:len(data) // 2], r'is truncated or corrupt.*Download it again'),
        'truncated_legacy.pth':
        (legacy.read_bytes()[:-100],
         r'probably truncated or corrupt: download it again'),
        'notes.pth': (b'epoch 12: mAP 0.41\n',
                      r'is not a PyTorch checkpoint.*Download it again'),
        'page.pth':
        (b'<!DOCTYPE html><html>Access denied</html>', r'is an HTML page'),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=message) as err:
            loader(str(path))
        assert str(path) in str(err.value)


def test_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    for loader in (load_untrusted_checkpoint, _load_checkpoint):
        with pytest.raises(CheckpointNotFoundError, match='does not exist'):
            loader(path)
    # mmengine's own loader raised FileNotFoundError; callers may rely on it.
    with pytest.raises(FileNotFoundError, match=path):
        _load_checkpoint(path)


# (e): harmless foreign classes load as inert stand-ins.


class _ConfigDict(dict):
    """Pickles like addict's ``Dict`` (mmcv 1.x ``ConfigDict``): its state is
    the mapping itself."""

    def __getstate__(self):
        return self

    def __setstate__(self, state):
        self.update(state)


class _Config:
    """Pickles like mmcv 1.x ``Config``: state is a tuple."""

    def __init__(self, cfg_dict, filename):
        self._cfg_dict = cfg_dict
        self._filename = filename

    def __getstate__(self):
        return self._cfg_dict, self._filename

    def __setstate__(self, state):
        self._cfg_dict, self._filename = state


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_foreign_classes_become_stand_ins(tmp_path, legacy):
    weights = {'w': torch.randn(3, 4), 'b': torch.arange(4)}
    optimizer = _ConfigDict(type='SGD', lr=0.1)
    path = tmp_path / 'deit.pth'
    torch.save(
        {
            'model':
            weights,
            'args':
            argparse.Namespace(lr=0.1, model='deit_small'),
            'config':
            _Config(_ConfigDict(optimizer=optimizer, steps=[8, 11]), 'x.py'),
            'same_optimizer':
            optimizer,
            'epoch':
            299,
        },
        path,
        _use_new_zipfile_serialization=not legacy)
    globals_before = set(torch.serialization.get_safe_globals())

    loaded = load_untrusted_checkpoint(path)

    assert loaded['epoch'] == 299
    assert loaded['model'].keys() == weights.keys()
    for name, value in weights.items():
        assert torch.equal(loaded['model'][name], value)
    args = loaded['args']
    assert type(args) is not argparse.Namespace
    assert isinstance(args, StandIn) and args.qualname == 'argparse.Namespace'
    assert args.state == {'lr': 0.1, 'model': 'deit_small'}
    config = loaded['config']
    assert config.qualname == f'{__name__}._Config'
    cfg_dict, filename = config.state
    assert filename == 'x.py'
    assert isinstance(cfg_dict, StandInDict)
    assert cfg_dict.qualname == f'{__name__}._ConfigDict'
    assert cfg_dict['steps'] == [8, 11]
    assert dict(cfg_dict['optimizer']) == {'type': 'SGD', 'lr': 0.1}
    # Shared references survive.
    assert cfg_dict['optimizer'] is loaded['same_optimizer']
    # The stand-ins were allow-listed for that one load only.
    assert set(torch.serialization.get_safe_globals()) == globals_before
