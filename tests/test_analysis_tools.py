"""What tools/analysis/get_flops.py, tools/analysis/benchmark.py,
tools/analysis/device_check.py and tools/image_demo.py do, run for real on
small settings through the package functions they call
(:mod:`stvit_mm.analysis`, :func:`stvit_mm.apis.inference.image_demo`).

The command lines themselves run as subprocesses where a test checks
their exit status. The benchmark's CPU memory probes still start real
subprocesses (``python -m stvit_mm.analysis.probe``).
"""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stvit_mm.analysis import (BenchmarkSettings, FlopsSettings, build_model,
                               count_whole_model, flops_report, run_benchmark)
from stvit_mm.analysis.timing import make_runner
from stvit_mm.apis import load_config
from stvit_mm.apis.inference import image_demo

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_DET = REPO / 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = REPO / 'configs/quickstart/stvit_r_swin_quickstart_ade.py'

# Tiny Swin baselines of the quickstart models (same stages and widths), so
# that comparisons run in seconds.
SWIN_BASELINE = """\
_base_ = '{base}'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=32,
        depths=[2, 2, 6, 2],
        num_heads=[1, 2, 4, 8],
        window_size=7,
        out_indices=(0, 1, 2, 3),
        init_cfg=None))
"""


def run_tool(relpath: str, *args):
    """A tool as a user runs it: its exit status, stdout and stderr."""
    return subprocess.run([sys.executable, str(REPO / relpath), *args],
                          capture_output=True, text=True, timeout=300,
                          cwd=str(REPO))


@pytest.fixture
def keep_threads():
    """The benchmark sets torch's thread count; give it back afterwards."""
    threads = torch.get_num_threads()
    yield threads
    torch.set_num_threads(threads)


def table_rows(text: str, first_cell: str = None):
    """Cells of the markdown table rows in ``text`` (header and separator
    rows excluded), optionally only rows whose first cell matches."""
    rows = []
    for line in text.splitlines():
        if not line.startswith('|') or set(line) <= set('|-'):
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        rows.append(cells)
    header = rows[0] if rows else []
    rows = [r for r in rows if r != header and r[0] != header[0]]
    if first_cell is not None:
        rows = [r for r in rows if r[0] == first_cell]
    return header, rows


def column(header, row, name):
    return row[header.index(name)]


# ---------------------------------------------------------------------------
# get_flops.py
# ---------------------------------------------------------------------------
def test_get_flops_custom_shape():
    """The command line, options mapped onto the settings."""
    proc = run_tool('tools/analysis/get_flops.py', '--no-paper-shapes',
                    '--shape', '64', '96', '--models', 'S')
    assert proc.returncode == 0, proc.stderr
    header, rows = table_rows(proc.stdout)
    by_name = {column(header, r, 'Backbone'): r for r in rows}
    assert set(by_name) == {'Swin-S', 'STViT-R-Swin-S'}
    for row in by_name.values():
        assert column(header, row, 'Input') == 'custom 64x96'
        assert 45 < float(column(header, row, 'Params (M)')) < 52
        assert float(column(header, row, 'GFLOPs')) > 0
    ratio = float(column(header, by_name['STViT-R-Swin-S'],
                         'STViT-R / Swin'))
    assert 0.5 < ratio < 1


def test_get_flops_whole_model_of_a_config():
    out = flops_report(FlopsSettings(
        configs=[str(QUICKSTART_DET), str(QUICKSTART_SEG)], shapes=[(64, 64)],
        whole_model=True))
    header, rows = table_rows(out)
    assert len(rows) == 2
    for row in rows:
        assert column(header, row, 'Backbone') == 'STViTRSwin'
        assert (float(column(header, row, 'Model GFLOPs')) >
                float(column(header, row, 'GFLOPs')) > 0)
        assert (float(column(header, row, 'Model params (M)')) >
                float(column(header, row, 'Params (M)')))


def test_whole_detector_count_matches_swin_paper():
    """Swin paper: Cascade Mask R-CNN Swin-S, 838 GFLOPs at 1280x800."""
    cfg = load_config('configs/cascade_swin_s_3x.py')
    macs = count_whole_model(build_model(cfg), (1, 3, 800, 1280))
    assert macs / 1e9 == pytest.approx(838, rel=0.01)


def test_get_flops_missing_config(tmp_path):
    """The command line: exit status 1 and the message, no traceback."""
    missing = str(tmp_path / 'nope.py')
    proc = run_tool('tools/analysis/get_flops.py', '--config', missing)
    assert proc.returncode == 1
    assert f'config not found: {missing}' in proc.stderr


# ---------------------------------------------------------------------------
# benchmark.py
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def swin_baselines(tmp_path_factory):
    """Tiny Swin twins of the quickstart configs, det and seg."""
    root = tmp_path_factory.mktemp('baselines')
    configs = {}
    for task, base in (('det', QUICKSTART_DET), ('seg', QUICKSTART_SEG)):
        path = root / f'swin_{task}.py'
        path.write_text(SWIN_BASELINE.format(base=base))
        configs[task] = [str(path), str(base)]
    return configs


def test_benchmark_tiny_with_plot(swin_baselines, capsys, tmp_path,
                                  keep_threads):
    """Backbone table (times, FLOPs ratio, CPU peak memory from the
    subprocess probes) and the token sweep plot, on the tiny backbones of
    the quickstart configs."""
    png = tmp_path / 'plots' / 'tokens.png'
    run_benchmark(BenchmarkSettings(
        backbone_configs=swin_baselines['det'], sizes=[(112, 112)],
        batch_sizes=[1], repeat=1, warmup=0, devices=['cpu'], plot=str(png)))
    out = capsys.readouterr().out
    backbones, sweep = out.split('## Semantic tokens per window')

    header, rows = table_rows(backbones, 'custom')
    assert len(rows) == 1
    row = rows[0]
    assert row[1:5] == ['cpu', 'fp32', '112x112', '1']
    for name in ('Swin (ms)', 'STViT-R (ms)', 'Swin peak (MiB)',
                 'STViT-R peak (MiB)', 'Time STViT-R / Swin',
                 'Memory STViT-R / Swin'):
        assert float(column(header, row, name)) > 0
    assert 0 < float(column(header, row, 'FLOPs STViT-R / Swin')) < 1

    header, rows = table_rows(sweep)
    assert [column(header, r, 'Tokens / window') for r in rows] == \
        ['49 (all)', '4', '9', '16']
    gflops = [float(column(header, r, 'GFLOPs')) for r in rows[1:]]
    assert gflops == sorted(gflops) and gflops[0] < gflops[-1]
    assert all(float(column(header, r, 'Time (ms)')) > 0 for r in rows)

    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100


def test_benchmark_project_configs_flops_column():
    """--models S builds the project's Swin-S / STViT-R-Swin-S pair (the
    command line, options mapped onto the settings)."""
    proc = run_tool('tools/analysis/benchmark.py', '--models', 'S',
                    '--sizes', '64x64', '--batch-sizes', '1', '--repeat', '1',
                    '--warmup', '0', '--no-memory')
    assert proc.returncode == 0, proc.stderr
    header, rows = table_rows(proc.stdout, 'S')
    assert len(rows) == 1
    assert 0.5 < float(column(header, rows[0], 'FLOPs STViT-R / Swin')) < 1
    assert column(header, rows[0], 'Swin peak (MiB)') == '-'


def test_benchmark_end_to_end(swin_baselines, capsys, keep_threads):
    run_benchmark(BenchmarkSettings(
        no_backbone=True, end_to_end=True,
        det_configs=swin_baselines['det'], seg_configs=swin_baselines['seg'],
        det_sizes=[(64, 96)], seg_sizes=[(64, 64)], batch_sizes=[1],
        repeat=1, warmup=0, no_memory=True))
    header, rows = table_rows(capsys.readouterr().out, 'custom')
    by_task = {column(header, r, 'Task'): r for r in rows}
    assert set(by_task) == {'det', 'seg'}
    for row in rows:
        assert column(header, row, 'Batch') == '1'
        assert float(column(header, row, 'Swin (ms)')) > 0
        assert float(column(header, row, 'STViT-R (ms)')) > 0
        assert float(column(header, row, 'Model FLOPs STViT-R / Swin')) > 0
        assert column(header, row, 'Swin peak (MiB)') == '-'
    assert column(header, by_task['det'], 'Input') == '64x96'
    # Score threshold 0: max_per_img (100) detections per image for both.
    assert column(header, by_task['det'], 'Detections / image') == \
        '100 / 100'
    assert column(header, by_task['seg'], 'Detections / image') == ''


def test_benchmark_defaults_are_the_readme_settings():
    """The command line's defaults: options not given keep the settings'
    defaults."""
    args = BenchmarkSettings()
    assert args.sizes == [(800, 1216), (800, 1333), (512, 512)]
    assert args.batch_sizes == [1, 2] and args.models == ['S', 'B']
    assert (args.repeat, args.warmup, args.threads) == (5, 1, 2)
    assert args.devices[0] == 'cpu'
    assert args.det_sizes == [(800, 1333)] and args.seg_sizes == [(512, 512)]


def test_benchmark_train_step_and_profile(swin_baselines, capsys,
                                          keep_threads):
    """--train times forward + backward (CPU peak memory from the probes in
    train mode); --profile prints one profiler table per model."""
    run_benchmark(BenchmarkSettings(
        backbone_configs=swin_baselines['det'], sizes=[(64, 64)],
        batch_sizes=[2], repeat=1, warmup=0, devices=['cpu'], train=True,
        profile=5, threads=1))
    out = capsys.readouterr().out
    assert '## Backbones, training step (forward + backward)' in out
    assert 'no optimizer step' in out
    assert out.count('### Profile:') == 2 and 'Self CPU' in out
    header, rows = table_rows(out, 'custom')
    assert len(rows) == 1
    assert rows[0][1:5] == ['cpu', 'fp32', '64x64', '2']
    for name in ('Swin (ms)', 'STViT-R (ms)', 'Swin peak (MiB)',
                 'STViT-R peak (MiB)'):
        assert float(column(header, rows[0], name)) > 0


def test_benchmark_train_runner_leaves_no_gradients():
    from stvit_mm.models import STViTRSwin
    model = STViTRSwin(embed_dims=16, num_heads=(1, 2, 4, 8))
    model.train()
    run = make_runner(model, 'backbone', torch.randn(1, 3, 32, 32), 'cpu',
                      'fp32', train=True)
    assert run() is None
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize('argv', [
    ['--sizes', '64'],
    ['--sizes', '0x64'],
    ['--batch-sizes', '0'],
    ['--no-backbone'],
    ['--no-backbone', '--plot', 'x.png', '--train'],
])
def test_benchmark_rejects_bad_options(argv):
    """The command line: a usage error (exit status 2) before any work."""
    proc = run_tool('tools/analysis/benchmark.py', *argv)
    assert proc.returncode == 2


RSS_PROBE = """
import torch
from stvit_mm.analysis.memory import rss_peak_mib

def allocate():
    buffer = torch.ones(200 * 2**20 // 4)  # 200 MiB, written: resident
    return float(buffer[-1])

print(rss_peak_mib(lambda: None)[0])
print(rss_peak_mib(allocate)[0])
"""


def test_rss_peak_sees_an_allocation():
    """In a fresh process (as the benchmark's probes run), the CPU memory
    measure sees a 200 MiB buffer that lives only inside the call, and
    nothing for a call that allocates nothing."""
    proc = subprocess.run([sys.executable, '-c', RSS_PROBE],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    idle, allocated = (float(v) for v in proc.stdout.split()[-2:])
    assert idle < 20
    assert 190 < allocated < 260


# ---------------------------------------------------------------------------
# device_check.py
# ---------------------------------------------------------------------------
DEVICE_CHECK_RUN = """
import sys
sys.modules['mmcv._ext'] = None  # as without mmcv's compiled ops
from stvit_mm.analysis import check_config
results = check_config(**{kwargs!r})
rc = 0 if results['passed'] else 1  # the tool's exit status
print('RC', rc, 'mmdet.models', 'mmdet.models' in sys.modules)
"""


def test_device_check_cpu_against_cpu(tmp_path):
    """The GPU correctness check, run CPU against CPU on a shrunk
    STViT-R-Swin-S config; in a fresh process, to see that it needs
    neither mmcv's compiled ops nor mmdet.models."""
    out = tmp_path / 'check.json'
    kwargs = dict(
        config='configs/cascade_stvit_r_swin_s_3x.py', device='cpu',
        threads=1, override='{"embed_dims": 16, "num_heads": [1, 2, 4, 8], '
        '"depths": [2, 2, 6, 2]}', sizes=[(64, 96), (40, 40)],
        dtypes=['bf16'], train_dtypes=['bf16', 'fp16'], train_size=(64, 64),
        train_steps=2, out=str(out))
    code = DEVICE_CHECK_RUN.format(kwargs=kwargs)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == 'RC 0 mmdet.models False'
    assert 'ALL PASSED' in proc.stdout
    results = json.loads(out.read_text())
    rows = results['outputs']
    # 2 pad-mask modes x 2 sizes x (fp32, fp32 autograd, bf16)
    assert len(rows) == 12 and all(r['passed'] for r in rows)
    assert {r['label'] for r in rows} == {'official', 'exact'}
    for r in rows:
        assert len(r['errors']) == 4
        if r['precision'].startswith('fp32'):
            assert r['error'] < 1e-6  # the same device: same arithmetic
        else:
            assert 0 < r['error'] < r['bound']  # bf16 really ran
    assert [r['precision'] for r in results['train']] == ['bf16', 'fp16']
    for r in results['train']:
        assert r['with_grad'] == r['params'] > 100
        assert r['nonfinite_grad'] == 0 and r['params_finite']
    assert results['setting']['embed_dims'] == 16


def test_device_check_catches_a_wrong_device_output():
    from stvit_mm.analysis import device_check, device_report
    from stvit_mm.models import STViTRSwin
    torch.manual_seed(0)
    model = STViTRSwin(embed_dims=16, num_heads=(1, 2, 4, 8))
    model.init_weights()
    device_check.perturb_weights(model, 0.5)
    assert all(p.eq(0.5).all() for n, p in model.named_parameters()
               if 'gamma' in n)
    # bf16 against fp32 with an impossible bound: the row must fail.
    rows = device_check.compare_outputs(model, 'cpu', sizes=[(32, 48)],
                                        batch=1, dtypes=['bf16'],
                                        low_bound=1e-9)
    assert [r['passed'] for r in rows] == [True, True, False]
    report = device_report.markdown_report(dict(
        setting=dict(device='cpu', ref_device='cpu', torch='x',
                     embed_dims=16, depths=[2], layer_scale=0.5),
        outputs=rows, train=[], passed=False))
    assert 'FAIL' in report and 'SOME CHECKS FAILED' in report


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


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-v']))
