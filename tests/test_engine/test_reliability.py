"""Reliability and safety: bad input, untrusted checkpoints, interrupted and
distributed training, determinism.

What tests/test_models/test_backbone.py, tests/test_utils/test_checkpoint.py
and tests/test_apis/test_tools.py already cover (backbone input/config
errors, the safe loader on mmengine's own paths, missing data and pretrained
files, a plain resume) is not repeated; the same datasets, configs and
helpers (tests/conftest.py, tests/helpers/) are used. The tools run
in-process where only their behaviour matters, and as subprocesses where
the process itself is the point (a crafted pickle, SIGKILL, two processes of
one distributed run, two runs that must agree). In-process, they are called
through the functions the tools call (:mod:`stvit_mm.apis`).
"""
import copy
import glob
import os
import os.path as osp
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.hooks import Hook
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

import stvit_mm  # noqa: F401
from helpers.paths import CONVERTER, QUICKSTART_DET, REPO
from helpers.payloads import RunsShell, save_payload
from helpers.tiny_configs import (RETINA_ANN_FILE, RETINA_IMG_DIR,
                                  tiny_retinanet_cfg)
from helpers.tools import (FEW_ROIS, NO_GPU, cfg_options, det_data_options,
                           exit_message, run_tool, seg_data_options,
                           short_run_options)
from stvit_mm.apis import (auto_resume_checkpoint, build_test_config,
                           build_train_config, convert_release, run_test,
                           run_train)
from stvit_mm.engine import CheckedLoadImageFromFile, ImageLoadError
from stvit_mm.engine.fileio import atomic_write
from stvit_mm.errors import ConfigError, exit_on_error
from stvit_mm.models import STViTRSwin
from stvit_mm.utils.checkpoint import (CheckpointError,
                                       load_untrusted_checkpoint)

TINY = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))


def _env():
    # One thread: tiny models, and a busy machine punishes OpenMP threads.
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _run_failing(*args, timeout=240):
    """Run a tool as a user would and return its output; it must fail."""
    proc = subprocess.run([sys.executable, *map(str, args)],
                          cwd=REPO,
                          env=_env(),
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    return output


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def retina(retinanet_data_root, tmp_path_factory):
    """A stock mmdet RetinaNet with an 8-channel ResNet-18 (the model of
    tests/test_utils/test_checkpoint.py) as a config file, trained for 2
    iterations by tools/train.py in-process; the fastest real detector for
    the tools."""
    root = tmp_path_factory.mktemp('retina')
    data_root = retinanet_data_root
    cfg = tiny_retinanet_cfg(data_root, str(root / 'train'))
    config = root / 'tiny_retinanet.py'
    cfg.dump(str(config))
    run_train(str(config), work_dir=str(root / 'train'))
    checkpoint = root / 'train' / 'iter_2.pth'
    assert checkpoint.is_file()
    return SimpleNamespace(
        cfg=cfg, config=config, data_root=data_root, checkpoint=checkpoint)


@pytest.fixture
def in_repo(monkeypatch):
    """Run tools in-process from the repository root, like a user."""
    monkeypatch.chdir(REPO)


# ---------------------------------------------------------------------------
# 1. Bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('H,W', [(1, 1), (7, 300), (300, 7), (33, 65)])
def test_backbone_is_finite_on_extreme_sizes(H, W):
    """Images smaller than one window and extreme aspect ratios: the right
    shapes and finite values, forward and backward, in eval and train mode
    (test_backbone checks eval-mode finiteness on other sizes)."""
    torch.manual_seed(0)
    model = STViTRSwin(**TINY, drop_path_rate=0.1)
    model.init_weights()
    # Order-1 layer scales, so that a NaN from a fully masked attention row
    # would reach the outputs instead of being scaled by 1e-5.
    for name, param in model.named_parameters():
        if 'gamma' in name:
            param.data.fill_(1.)
    img = torch.randn(2, 3, H, W)
    with torch.no_grad():
        outs = model.eval()(img)
    for i, out in enumerate(outs):
        stride = 2**(i + 2)
        assert out.shape == (2, 16 * 2**i, -(-H // stride), -(-W // stride))
        assert torch.isfinite(out).all()
    outs = model.train()(img)
    sum(o.square().mean() for o in outs).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize('img,fragment', [
    ([torch.randn(1, 3, 32, 32)], 'expects images of shape'),
    (torch.randn(1, 3, 64, 0), 'empty input'),
    (torch.randn(2, 3, 0, 64), 'empty input'),
])
def test_more_bad_inputs_are_refused(img, fragment):
    with pytest.raises(ValueError, match=fragment):
        STViTRSwin(**TINY)(img)


@pytest.mark.parametrize('scope_line,shown', [('', 'None'),
                                              ("default_scope = 'mmdett'\n",
                                               "'mmdett'")])
def test_tools_refuse_configs_of_unknown_scope(tmp_path, tool_error,
                                               scope_line, shown):
    config = tmp_path / 'bad.py'
    config.write_text(scope_line + 'model = dict()\n')
    for call in ((run_train, config), (run_test, config, config)):
        message = tool_error(*call)
        assert f'default_scope is {shown}' in message
        assert "'mmdet' / 'mmseg'" in message


def test_missing_image_folder_is_named_by_test_tool(coco_root, tmp_path,
                                                    tool_error):
    checkpoint = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {}}, checkpoint)
    message = tool_error(
        run_test, QUICKSTART_DET, checkpoint,
        cfg_options=cfg_options(
            *det_data_options(coco_root),
            'test_dataloader.dataset.data_prefix.img=nowhere/'))
    assert f'{coco_root}/nowhere' in message
    assert 'test_dataloader dataset data_prefix.img' in message
    assert 'COCO layout' in message


def _image_bytes(ext):
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(ext, rng.integers(0, 255, (40, 56, 3), np.uint8))
    assert ok
    return buf.tobytes()


UNREADABLE = {
    'empty.jpg': (b'', 'the file is empty (0 bytes)'),
    'truncated.jpg': (_image_bytes('.jpg')[:-500], 'it cannot be decoded'),
    'truncated.png': (_image_bytes('.png')[:200], 'it cannot be decoded'),
    'page.jpg': (b'<!DOCTYPE html><html>403</html>', 'it cannot be decoded'),
    'missing.jpg': (None, 'the file does not exist'),
}


@pytest.mark.parametrize('name', list(UNREADABLE))
def test_unreadable_image_is_named(tmp_path, name):
    content, reason = UNREADABLE[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageLoadError) as err:
        CheckedLoadImageFromFile()(dict(img_path=str(path)))
    assert f'Cannot load image {path}: {reason}' in str(err.value)
    # As with mmcv's loader, ignore_empty skips the image instead.
    skip = CheckedLoadImageFromFile(ignore_empty=True)
    assert skip(dict(img_path=str(path))) is None


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(to_float32=True),
    dict(color_type='grayscale'),
    dict(color_type='unchanged', imdecode_backend='pillow'),
])
def test_checked_loader_loads_like_mmcv(tmp_path, kwargs):
    for ext in ('.jpg', '.png'):
        path = tmp_path / f'good{ext}'
        path.write_bytes(_image_bytes(ext))
        ours = CheckedLoadImageFromFile(**kwargs)(dict(img_path=str(path)))
        theirs = LoadImageFromFile(**kwargs)(dict(img_path=str(path)))
        assert ours.keys() == theirs.keys()
        assert ours['img'].dtype == theirs['img'].dtype
        assert np.array_equal(ours['img'], theirs['img'])
        assert ours['img_shape'] == theirs['img_shape'] == (40, 56)


def _copy_data(retina, tmp_path):
    data_root = tmp_path / 'data'
    data_root.mkdir()
    for name in (osp.dirname(RETINA_ANN_FILE), RETINA_IMG_DIR.rstrip('/')):
        src = Path(retina.data_root) / name
        if src.is_dir():
            (data_root / name).mkdir()
            for f in src.iterdir():
                (data_root / name / f.name).write_bytes(f.read_bytes())
        else:
            (data_root / name).write_bytes(src.read_bytes())
    return data_root


def _data_options(data_root):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'test_evaluator.ann_file={data_root}/{RETINA_ANN_FILE}'
    ]


def test_corrupt_image_stops_training_and_testing_with_its_name(
        retina, tmp_path, in_repo):
    """A 0-byte image fails in OpenCV with no file name (mmcv's own loader:
    ``!buf.empty() in function 'imdecode_'``); a truncated one trips an
    assert. Through the tools both name the file."""
    data_root = _copy_data(retina, tmp_path)
    # The first image of the first batch.
    empty = data_root / RETINA_IMG_DIR / '000000.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ImageLoadError) as err:
        run_train(
            str(retina.config),
            work_dir=str(tmp_path / 'train'),
            cfg_options=cfg_options(*_data_options(data_root)))
    assert f'Cannot load image {empty}: the file is empty' in str(err.value)

    empty.write_bytes(
        (Path(retina.data_root) / RETINA_IMG_DIR / '000000.jpg').read_bytes())
    truncated = data_root / RETINA_IMG_DIR / '000001.jpg'  # 2nd test image
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ImageLoadError) as err:
        run_test(
            str(retina.config),
            str(retina.checkpoint),
            work_dir=str(tmp_path / 'test'),
            cfg_options=cfg_options(*_data_options(data_root)))
    assert f'Cannot load image {truncated}: it cannot be decoded' in str(
        err.value)


def _image_loaders(cfg):
    return [
        t['type'] for split in ('train', 'val', 'test')
        for t in cfg[f'{split}_dataloader'].dataset.pipeline
        if 'Image' in t['type']
    ]


def test_tools_wire_the_safeguards_into_every_config(
        ade_root, tiny_configs, tmp_path):
    """Every dataloader (TTA included) loads images through the checked
    loader; checkpoints are guarded, strictly for testing and resuming, and
    written atomically when training."""
    checkpoint = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {}}, checkpoint)
    options = cfg_options(*seg_data_options(ade_root))
    cfg = build_test_config(
        str(tiny_configs['seg']),
        str(checkpoint),
        tta=True,
        work_dir=str(tmp_path),
        cfg_options=options)
    assert _image_loaders(cfg) == ['CheckedLoadImageFromFile'] * 3
    assert cfg.custom_hooks[-1] == dict(
        type='CheckpointGuardHook', strict=True)
    assert cfg.default_hooks.checkpoint.type == 'CheckpointHook'
    assert 'stvit_mm.engine' in cfg.custom_imports.imports

    for resume, strict in ((None, False), (str(checkpoint), True)):
        cfg = build_train_config(
            str(tiny_configs['seg']),
            work_dir=str(tmp_path / 'w'),
            resume=resume,
            cfg_options=options)
        assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
        assert cfg.custom_hooks[-1] == dict(
            type='CheckpointGuardHook', strict=strict)
        assert _image_loaders(cfg) == ['CheckedLoadImageFromFile'] * 3


# ---------------------------------------------------------------------------
# 2. Untrusted checkpoints
# ---------------------------------------------------------------------------
def test_converter_refuses_crafted_pickle(tmp_path, marker):
    src = save_payload(tmp_path / 'STViT-R-Swin-S.pth', RunsShell(marker))
    dst = tmp_path / 'converted.pth'
    output = _run_failing(CONVERTER, src, dst)
    assert f'{src} is not a plain checkpoint' in output
    assert 'could run code when loaded; refusing to load it' in output
    assert not dst.exists() and not os.path.exists(marker)


@pytest.mark.parametrize('content,fragment', [
    (b'version https://git-lfs.github.com/spec/v1\n', 'Git LFS pointer'),
    (b'', 'is empty (0 bytes)'),
    (None, 'is truncated or corrupt'),
])
def test_converter_explains_damaged_files(retina, tmp_path, content,
                                          fragment):
    src = tmp_path / 'release.pth'
    if content is None:
        content = retina.checkpoint.read_bytes()[:20000]
    src.write_bytes(content)
    dst = tmp_path / 'out.pth'
    # What the converter tool runs, and how it exits.
    with pytest.raises(SystemExit) as err, exit_on_error(CONVERTER.name):
        convert_release(str(src), str(dst))
    assert str(src) in str(err.value.code) and fragment in str(err.value.code)
    assert not dst.exists()


def test_test_tool_refuses_crafted_pickle(retina, tmp_path,
                                          marker):
    """A pre-zip pickle cannot be scanned before loading, so this one gets
    past the early check and is refused by the loader the Runner uses."""
    evil = save_payload(tmp_path / 'evil.pth', RunsShell(marker), True)
    output = _run_failing('tools/test.py', retina.config, evil, '--work-dir',
                          tmp_path / 'work')
    assert f'test.py: error: {evil} is not a plain checkpoint' in output
    assert 'could run code' in output
    assert 'Traceback' not in output
    assert not os.path.exists(marker)


def _damaged(kind, retina, tmp_path, marker):
    path = tmp_path / f'{kind}.pth'
    if kind == 'crafted':
        save_payload(path, RunsShell(marker))
    elif kind == 'truncated':
        data = retina.checkpoint.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b'<!DOCTYPE html><html>Sign in</html>')
    return path


@pytest.mark.parametrize('kind,fragment', [
    ('crafted', 'could run code when loaded'),
    ('truncated', 'is truncated or corrupt'),
    ('html', 'It is an HTML page'),
])
@pytest.mark.parametrize('route', ['test', 'resume', 'load_from', 'init_cfg'])
def test_tools_check_checkpoints_before_building_anything(
        retina, tmp_path, tool_error, marker, kind, fragment,
        route):
    """Every way the tools load a checkpoint fails within seconds (no Runner
    is built: ``tool_error`` forbids it), naming the file and the problem."""
    path = _damaged(kind, retina, tmp_path, marker)
    work_dir = tmp_path / 'work'
    train_options, label = {
        'test': ({}, 'checkpoint'),
        'resume': (dict(resume=path), '--resume'),
        'load_from': (dict(cfg_options=cfg_options(f'load_from={path}')),
                      'load_from'),
        'init_cfg': (dict(cfg_options=cfg_options(
            'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={path}')),
                     'model.backbone.init_cfg.checkpoint'),
    }[route]
    if route == 'test':
        message = tool_error(run_test, retina.config, path, work_dir=work_dir)
    else:
        message = tool_error(run_train, retina.config, work_dir=work_dir,
                             **train_options)
    assert f'{label}: {path}' in message
    assert fragment in message


def test_bare_resume_with_a_broken_last_checkpoint_lists_intact_ones(
        retina, tmp_path):
    good = tmp_path / 'iter_2.pth'
    good.write_bytes(retina.checkpoint.read_bytes())
    broken = tmp_path / 'iter_4.pth'
    broken.write_bytes(good.read_bytes()[:1000])
    marker_file = tmp_path / 'last_checkpoint'
    marker_file.write_text(str(broken))
    with pytest.raises(ConfigError) as err:
        auto_resume_checkpoint(str(tmp_path))
    message = str(err.value)
    assert f'{broken} is truncated or corrupt' in message
    assert f'--resume {good}' in message
    assert f'--resume {broken}' not in message

    marker_file.write_text(str(tmp_path / 'iter_6.pth'))
    with pytest.raises(ConfigError, match='iter_6.pth, which does '
                       'not exist'):
        auto_resume_checkpoint(str(tmp_path))
    marker_file.write_text(str(good))
    assert auto_resume_checkpoint(str(tmp_path)) == str(good)


def _with_config_string(retina, path, marker_path):
    """The tiny RetinaNet checkpoint, plus a ``meta['config']`` that runs a
    shell command when parsed as an mmengine config."""
    checkpoint = load_untrusted_checkpoint(retina.checkpoint)
    checkpoint['meta']['config'] = (
        f"status = __import__('os').system('touch {marker_path}')\n")
    torch.save(checkpoint, path)
    return path


def test_resume_never_executes_a_config_string_from_the_checkpoint(
        retina, tmp_path, in_repo):
    # Without the guard, mmengine's Runner.resume executes it: the hole.
    stock_marker = tmp_path / 'ran_in_stock_runner'
    cfg = copy.deepcopy(retina.cfg)
    cfg.update(
        work_dir=str(tmp_path / 'stock'),
        load_from=str(
            _with_config_string(retina, tmp_path / 'a.pth', stock_marker)),
        resume=True)
    cfg.train_cfg.max_iters = 3
    Runner.from_cfg(cfg).train()
    assert stock_marker.exists()

    # tools/train.py --resume: the same kind of file resumes, inertly.
    tool_marker = tmp_path / 'ran_in_train_tool'
    crafted = _with_config_string(retina, tmp_path / 'b.pth', tool_marker)
    work = tmp_path / 'tool'
    run_train(
        str(retina.config),
        work_dir=str(work),
        resume=str(crafted),
        cfg_options=cfg_options('train_cfg.max_iters=3'))
    assert not tool_marker.exists()
    assert load_untrusted_checkpoint(work / 'iter_3.pth')['meta']['iter'] == 3
    log = open(glob.glob(str(work / '*/*.log'))[0]).read()
    assert "Dropped meta['config'] from the loaded checkpoint" in log


@pytest.fixture(scope='module')
def other_architecture(retina, tmp_path_factory):
    """A checkpoint of another RetinaNet: ResNet-34 (extra blocks), 5
    classes (other head shape), no stacked head convs (missing layers)."""
    model_cfg = copy.deepcopy(retina.cfg.model)
    model_cfg.backbone.depth = 34
    model_cfg.bbox_head.update(num_classes=5, stacked_convs=0)
    init_default_scope('mmdet')
    model = MODELS.build(model_cfg)
    path = tmp_path_factory.mktemp('other') / 'retinanet_r34_5cls.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.mark.parametrize('route', ['test', 'resume'])
def test_checkpoint_of_another_architecture_is_refused_with_its_keys(
        retina, other_architecture, tmp_path, in_repo, route):
    """mmengine loads with strict=False and only warns, then evaluates (or
    continues) a partly random model; tools/test.py and --resume refuse."""
    work_dir = tmp_path / 'work'
    # The message the tool exits with (the Runner is built: exit_message).
    if route == 'test':
        message = exit_message(run_test, retina.config, other_architecture,
                               work_dir=work_dir)
    else:
        message = exit_message(run_train, retina.config,
                               resume=other_architecture, work_dir=work_dir)
    assert f'error: {other_architecture} does not fit the RetinaNet' in message
    assert 'missing in the checkpoint (4): bbox_head.cls_convs.0.conv.bias' \
        in message
    assert 'unexpected in the checkpoint (' in message
    assert 'backbone.layer1.2.' in message
    assert ('shape mismatches (2): bbox_head.retina_cls.bias (checkpoint (5,)'
            ' vs model (2,)), bbox_head.retina_cls.weight (checkpoint '
            '(5, 16, 3, 3) vs model (2, 16, 3, 3))') in message


def test_load_from_may_fine_tune_another_head(retina, other_architecture,
                                              tmp_path, in_repo):
    """load_from in training stays mmengine's partial load (fine-tuning a
    checkpoint for another class count is what it is for)."""
    work = tmp_path / 'work'
    run_train(
        str(retina.config),
        work_dir=str(work),
        cfg_options=cfg_options(f'load_from={other_architecture}',
                                'train_cfg.max_iters=1'))
    assert (work / 'iter_1.pth').is_file()


# ---------------------------------------------------------------------------
# 3. Interrupted training
# ---------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / 'f.bin'
    atomic_write(b'old', path)
    with pytest.raises(TypeError):
        atomic_write('not bytes', path)
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['f.bin']  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() gives


class _FileSizeLimitAfterFirstSave(Hook):
    """After the first checkpoint, limits the size of any file this process
    writes to half of it, as a full disk or quota would: the next
    checkpoint write fails halfway with EFBIG."""
    priority = 'LOWEST'  # after the CheckpointHook saved

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == 1:
            size = osp.getsize(osp.join(runner.work_dir, 'iter_1.pth'))
            resource.setrlimit(resource.RLIMIT_FSIZE,
                               (size // 2, resource.RLIM_INFINITY))


@pytest.mark.parametrize('hook', ['AtomicCheckpointHook', 'CheckpointHook'])
def test_crash_while_saving_keeps_the_previous_checkpoint(
        retina, tmp_path, hook):
    """With max_keep_ckpts=1, a save that fails halfway must leave the
    previous checkpoint, and last_checkpoint naming it, intact. mmengine's
    own hook deletes it first, then leaves a truncated file: the second
    case shows the failure this test would catch."""
    cfg = copy.deepcopy(retina.cfg)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.checkpoint = dict(
        type=hook, interval=1, by_epoch=False, max_keep_ckpts=1)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_FileSizeLimitAfterFirstSave())
    # Writes past the limit then fail with EFBIG instead of killing us.
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        with pytest.raises(OSError, match='File too large'):
            runner.train()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)

    first, second = tmp_path / 'iter_1.pth', tmp_path / 'iter_2.pth'
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(first)
    if hook == 'CheckpointHook':
        assert not first.exists()
        with pytest.raises(CheckpointError, match='truncated or corrupt'):
            load_untrusted_checkpoint(second)
        return
    assert load_untrusted_checkpoint(first)['meta']['iter'] == 1
    assert not second.exists()
    # No half-written temporary file is left behind either.
    assert [p.name for p in tmp_path.iterdir()
            if p.name.startswith('.')] == []
    assert auto_resume_checkpoint(str(tmp_path)) == str(first)


def test_sigkill_after_a_checkpoint_then_resume(ade_root, tiny_configs,
                                                tmp_path):
    """Kill tools/train.py hard once it has saved a checkpoint; --resume
    then continues from that iteration with its optimizer and scheduler."""
    config, work = tiny_configs['seg'], tmp_path / 'work'

    def options(max_iters):
        return seg_data_options(ade_root) + short_run_options(max_iters) + [
            'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'train_cfg.val_interval=1000'
        ]

    log = tmp_path / 'killed.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen([
            sys.executable, 'tools/train.py', config, '--work-dir', work,
            '--cfg-options', *options(200)
        ],
                                cwd=REPO,
                                env=_env(),
                                stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not (work / 'last_checkpoint').exists():
                assert proc.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, 'no checkpoint in time'
                time.sleep(0.1)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    resumed_path = (work / 'last_checkpoint').read_text()
    saved = load_untrusted_checkpoint(resumed_path)
    n = saved['meta']['iter']
    assert resumed_path.endswith(f'iter_{n}.pth') and n % 2 == 0
    saved_lr = saved['optimizer']['param_groups'][0]['lr']

    output = run_tool('tools/train.py', config, '--work-dir', work,
                      '--resume', '--cfg-options', *options(n + 1))
    assert f'resumed epoch: 0, iter: {n}' in output
    logged = re.search(
        rf'Iter\(train\) \[\s*{n + 1}/{n + 1}\].*?\slr: ([0-9.e+-]+)', output)
    assert logged, output[-3000:]
    # The learning rate of the resumed iteration is the one the killed run
    # had scheduled for it, well past the warm-up's starting value.
    assert float(logged.group(1)) == pytest.approx(saved_lr, rel=1e-3)
    assert saved_lr > 1000 * saved['param_schedulers'][0]['start_factor'] * \
        saved['param_schedulers'][0]['base_values'][0]

    after = load_untrusted_checkpoint(work / f'iter_{n + 1}.pth')
    # AdamW counted every step of both runs: its moments were restored.
    steps = {float(s['step']) for s in after['optimizer']['state'].values()}
    assert steps == {n + 1}
    assert [s['_global_step'] for s in after['param_schedulers']
            ] == [n + 1] * len(after['param_schedulers'])
    # max_keep_ckpts=1 of the quickstart: only the new one is kept.
    assert sorted(p.name for p in work.glob('*.pth')) == [f'iter_{n + 1}.pth']


# ---------------------------------------------------------------------------
# 4. Distributed training
# ---------------------------------------------------------------------------
PERTURB_HOOK = '''
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class PerturbRankOne(Hook):
    """Knocks rank 1's classifier off after the first step."""
    priority = 'ABOVE_NORMAL'  # before RankConsistencyHook

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if get_rank() == 1 and runner.iter == 0:
            runner.model.module.decode_head.conv_seg.weight.data[0] += 1e-3
'''


def _dist_train(config, work_dir, options, extra_pythonpath=None):
    env = dict(_env(), PYTHON=sys.executable, PORT=str(_free_port()))
    if extra_pythonpath:
        env['PYTHONPATH'] = str(extra_pythonpath)
    proc = subprocess.run([
        'bash', 'tools/dist_train.sh',
        str(config), '2', '--work-dir',
        str(work_dir), '--cfg-options', *options
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.skipif(not NO_GPU, reason='exercises the CPU (gloo) fallback')
def test_dist_train_ranks_agree(ade_root, tiny_configs, tmp_path):
    """Two CPU processes: after every iteration both hold bitwise identical
    parameters, and the loss of the global batch is the mean of the ranks'
    losses (test_tools covers dist_test.sh's evaluation)."""
    config = tmp_path / 'rank_check.py'
    config.write_text(f"_base_ = '{tiny_configs['seg']}'\n"
                      "custom_hooks = [dict(type='RankConsistencyHook', "
                      'interval=1)]\n')
    options = seg_data_options(ade_root) + short_run_options(2) + [
        'default_hooks.logger.interval=1', 'train_cfg.val_interval=1000'
    ]
    rc, output = _dist_train(config, tmp_path / 'work', options)
    assert rc == 0, output[-6000:]
    checks = re.findall(
        r'RankConsistencyHook: iter (\d): parameters identical on all 2 '
        r'ranks; loss per rank: ([0-9.]+), ([0-9.]+); mean over ranks: '
        r'([0-9.]+)', output)
    assert [int(c[0]) for c in checks] == [1, 2], output[-6000:]
    for _, rank0, rank1, mean in checks:
        assert float(mean) == pytest.approx(
            (float(rank0) + float(rank1)) / 2, abs=2e-6)
    # Rank 0's share is the loss the logger printed for the first iteration
    # (later lines are averaged over the logging window).
    logged = re.search(r'Iter\(train\) \[1/2\].*?\sloss: ([0-9.]+)', output)
    assert float(logged.group(1)) == pytest.approx(
        float(checks[0][1]), abs=1e-4)


@pytest.mark.skipif(not NO_GPU, reason='exercises the CPU (gloo) fallback')
def test_dist_train_stops_when_ranks_diverge(ade_root, tiny_configs,
                                             tmp_path):
    (tmp_path / 'perturb_rank_one.py').write_text(PERTURB_HOOK)
    config = tmp_path / 'diverging.py'
    config.write_text(
        f"_base_ = '{tiny_configs['seg']}'\n"
        "custom_imports = dict(imports=['stvit_mm', 'perturb_rank_one'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='PerturbRankOne'), "
        "dict(type='RankConsistencyHook', interval=1)]\n")
    options = seg_data_options(ade_root) + short_run_options(2)
    rc, output = _dist_train(config, tmp_path / 'work', options, tmp_path)
    assert rc != 0
    assert ('after iteration 1 the parameters of 1 of' in output
            and 'differ from rank 0: decode_head.conv_seg.weight (rank 1)'
            in output), output[-6000:]


# ---------------------------------------------------------------------------
# 5. Determinism
# ---------------------------------------------------------------------------
def test_fixed_seed_gives_identical_first_iterations(coco_root, tiny_configs,
                                                     tmp_path):
    """The quickstart detector (shrunk), 3 iterations twice with
    randomness=dict(seed=..., deterministic=True): the same losses and
    bitwise the same weights."""
    options = det_data_options(coco_root) + FEW_ROIS + short_run_options(3) + [
        'default_hooks.logger.interval=1', 'train_cfg.val_interval=1000',
        'randomness.seed=2024', 'randomness.deterministic=True'
    ]
    losses, weights = [], []
    for run in ('a', 'b'):
        work = tmp_path / run
        output = run_tool('tools/train.py', tiny_configs['det'], '--work-dir',
                          work, '--cfg-options', *options)
        losses.append(
            re.findall(r'Iter\(train\) \[\d/3\].*?\sloss: ([0-9.]+)', output))
        weights.append(
            load_untrusted_checkpoint(work / 'iter_3.pth')['state_dict'])
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
