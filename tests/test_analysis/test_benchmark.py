"""tools/analysis/benchmark.py and :mod:`stvit_mm.analysis` timing, memory,
plot and profiling, run for real on tiny Swin/STViT-R pairs. The CPU memory
probes start real subprocesses (``python -m stvit_mm.analysis.probe``)."""
import subprocess
import sys

import cv2
import pytest
import torch

from helpers.analysis import (SWIN_BASELINE, column,
                              run_analysis_tool as run_tool, table_rows)
from helpers.paths import REPO
from stvit_mm.analysis import (BenchmarkSettings, FlopsSettings, flops_report,
                               run_benchmark)
from stvit_mm.analysis.timing import make_runner

QUICKSTART_DET = REPO / 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = REPO / 'configs/quickstart/stvit_r_swin_quickstart_ade.py'
QUICKSTART_CLS = REPO / 'configs/quickstart/stvit_r_swin_quickstart_in1k.py'
CLASSIFIER_S = 'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py'


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


def test_benchmark_in_onnx_runtime(swin_baselines, capsys):
    """--runtime onnxruntime: both tiny backbones exported (fixed size) and
    timed in ONNX Runtime, each session checked against PyTorch."""
    pytest.importorskip('onnxruntime')
    run_benchmark(BenchmarkSettings(
        runtime='onnxruntime', backbone_configs=swin_baselines['det'],
        sizes=[(64, 96)], batch_sizes=[1], repeat=1, warmup=0,
        no_memory=True))
    out = capsys.readouterr().out
    assert '## Backbones in ONNX Runtime (CPU)' in out
    header, rows = table_rows(out, 'custom')
    assert [r[1:3] for r in rows] == [['64x96', '1']]
    for name in ('Swin (ms)', 'STViT-R (ms)', 'Time STViT-R / Swin'):
        assert float(column(header, rows[0], name)) > 0
    assert 0 < float(column(header, rows[0], 'FLOPs STViT-R / Swin')) < 1
    errors = column(header, rows[0], 'ORT err (Swin, STViT-R)').split(', ')
    assert len(errors) == 2 and all(float(e) <= 1e-4 for e in errors)


def test_onnx_runtime_refuses_training_and_cuda():
    from stvit_mm.errors import ConfigError
    with pytest.raises(ConfigError, match='--runtime onnxruntime times'):
        BenchmarkSettings(runtime='onnxruntime', train=True)


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
    assert not args.classifier
    assert args.cls_sizes == [(224, 224)] and args.cls_batch_sizes == [1, 32]
    # The classifier table alone is something to do.
    assert BenchmarkSettings(no_backbone=True, classifier=True).classifier


# ---------------------------------------------------------------------------
# benchmark.py --classifier
# ---------------------------------------------------------------------------
def test_benchmark_classifier_rows():
    """--classifier: the ImageNet classifier S against mmpretrain's Swin-S
    classifier, at the smallest input mmpretrain's Swin takes, the batch
    sizes as asked, CPU peak memory from the probes; the FLOPs ratio is
    get_flops.py's whole-classifier ratio of that pair at that input."""
    from stvit_mm.analysis.classifier import classifier_subjects
    swin, stvit = classifier_subjects('S')
    assert swin.config.endswith('swin_transformer/swin-small_16xb64_in1k.py')
    assert stvit.config == CLASSIFIER_S and swin.task == stvit.task == 'cls'

    proc = run_tool('tools/analysis/benchmark.py', '--no-backbone',
                    '--classifier', '--models', 'S', '--cls-sizes',
                    '193x193', '--cls-batch-sizes', '2', '1', '--repeat',
                    '1', '--warmup', '0', '--threads', '1')
    assert proc.returncode == 0, proc.stderr
    assert "## ImageNet classifiers (model(inputs, mode='tensor')" in \
        proc.stdout
    assert '## Backbones' not in proc.stdout
    header, rows = table_rows(proc.stdout, 'S')
    assert [r[1:5] for r in rows] == [['cpu', 'fp32', '193x193', '2'],
                                      ['cpu', 'fp32', '193x193', '1']]
    for row in rows:
        for name in ('Swin (ms)', 'STViT-R (ms)', 'Time STViT-R / Swin',
                     'Swin peak (MiB)', 'STViT-R peak (MiB)',
                     'Memory STViT-R / Swin'):
            assert float(column(header, row, name)) > 0, name

    flops_header, flops_rows = table_rows(flops_report(FlopsSettings(
        configs=[CLASSIFIER_S], shapes=[(193, 193)], whole_model=True)))
    assert flops_rows[2][0] == 'ratio STViT-R / Swin'
    expected = column(flops_header, flops_rows[2], 'Model GFLOPs')
    assert float(expected) < 1
    assert [column(header, r, 'Model FLOPs STViT-R / Swin')
            for r in rows] == [expected, expected]


def test_classifier_runner_returns_the_logits():
    """What the classifier rows time: the whole classifier, up to the
    logits."""
    from stvit_mm.analysis.models import Subject, build_subject, make_batch
    model = build_subject(Subject('cls', str(QUICKSTART_CLS)))
    data = make_batch('cls', 2, (112, 112), 'cpu')
    logits = make_runner(model, 'cls', data, 'cpu', 'fp32')()
    assert logits.shape == (2, model.head.fc.out_features)


def test_benchmark_classifier_refuses_a_size_swin_cannot_take():
    """A side below 193 px leaves mmpretrain's Swin a last-stage map
    smaller than its 7x7 window: one error line before any work."""
    proc = run_tool('tools/analysis/benchmark.py', '--no-backbone',
                    '--classifier', '--cls-sizes', '224x224', '192x224')
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "benchmark.py: error: --cls-sizes 192x224: mmpretrain's Swin "
        'classifiers take sides of at least 193 px (their last stage must '
        'hold a 7x7 window)')


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
    # Forward + backward MACs, measured on meta (at 64x64 the tiny
    # backbones' stage 3 is one window: no saving to expect).
    assert float(column(header, rows[0],
                        'FLOPs (fwd+bwd) STViT-R / Swin')) > 0


def test_benchmark_token_sweep_of_training_steps(swin_baselines, capsys,
                                                 tmp_path, keep_threads):
    """--train --plot: the token sweep times training steps and counts
    their forward + backward MACs (more tokens, more MACs)."""
    run_benchmark(BenchmarkSettings(
        backbone_configs=swin_baselines['det'], sizes=[(64, 64)],
        batch_sizes=[1], repeat=1, warmup=0, devices=['cpu'], train=True,
        no_backbone=True, plot=str(tmp_path / 'train.png'),
        sample_sizes=[2, 4], threads=1))
    out = capsys.readouterr().out
    assert '## Semantic tokens per window, training step' in out
    header, rows = table_rows(out.split('training step')[-1])
    assert [column(header, r, 'Tokens / window') for r in rows] == \
        ['49 (all)', '4', '16']
    gflops = [float(column(header, r, 'GFLOPs')) for r in rows[1:]]
    assert gflops[0] < gflops[1]
    assert (tmp_path / 'train.png').is_file()


def test_benchmark_rows_per_neighbourhood_backend(swin_baselines, capsys,
                                                   keep_threads):
    """--neighbourhood-impl: one training row per backend, each STViT-R
    built with that backend (the memory probe's subprocess too)."""
    from stvit_mm.analysis.models import Subject, build_subject
    run_benchmark(BenchmarkSettings(
        backbone_configs=swin_baselines['det'], sizes=[(112, 112)],
        batch_sizes=[1], repeat=1, warmup=0, devices=['cpu'], train=True,
        threads=1, neighbourhood_impls=['key_windows', 'gather']))
    header, rows = table_rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ['custom key_windows', 'custom gather']
    for row in rows:
        assert float(column(header, row, 'STViT-R peak (MiB)')) > 0
    built = build_subject(Subject('backbone', swin_baselines['det'][1],
                                  neighbourhood_impl='key_windows'))
    assert built.neighbourhood_impl == 'key_windows'


def test_benchmark_refuses_an_unknown_backend():
    proc = run_tool('tools/analysis/benchmark.py', '--neighbourhood-impl',
                    'flash')
    assert proc.returncode == 2
    assert "choose from ('auto', 'strips', 'key_windows', 'gather')" in \
        proc.stderr


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
    ['--cls-batch-sizes', '0'],
    ['--no-backbone'],
    ['--no-backbone', '--plot', 'x.png', '--profile', '5'],
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
