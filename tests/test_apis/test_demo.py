"""tools/quickstart.py: a tiny end-to-end run, and its failure reporting."""
import json
import os
import os.path as osp
import subprocess
import sys
import time

import cv2

from helpers.paths import REPO
from stvit_mm.apis.quickstart import data_cfg_options, fresh_work_dir
from stvit_mm.apis.threads import busy_cores, choose_threads

QUICKSTART = osp.join(REPO, 'tools', 'quickstart.py')


def run(*args, timeout=900):
    return subprocess.run([sys.executable, QUICKSTART, *args],
                          capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def test_fresh_work_dir_never_reuses_content(tmp_path):
    missing = str(tmp_path / 'demo')
    assert fresh_work_dir(missing) == missing
    os.makedirs(missing)
    assert fresh_work_dir(missing) == missing  # empty: fine
    (tmp_path / 'demo' / 'metrics.json').write_text('{}')
    first = fresh_work_dir(missing)
    assert first != missing and first.startswith(missing + '_')
    os.makedirs(first)
    second = fresh_work_dir(missing)
    assert second not in (missing, first) and not osp.exists(second)


def test_data_cfg_options_point_every_split_at_the_root():
    det = data_cfg_options('det', '/d/shapes')
    for split in ('train', 'val', 'test'):
        assert f'{split}_dataloader.dataset.data_root=/d/shapes/' in det
    assert ('test_evaluator.ann_file=/d/shapes/annotations/'
            'instances_val.json') in det
    seg = data_cfg_options('seg', '/d/ade/')
    assert 'val_dataloader.dataset.data_root=/d/ade/' in seg
    assert not any('evaluator' in opt for opt in seg)


def test_thread_choice_respects_the_user(monkeypatch):
    assert choose_threads(3) == 3  # --threads wins
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert choose_threads() is None  # an exported value is kept
    monkeypatch.delenv('OMP_NUM_THREADS')
    # Otherwise one thread on busy cores, torch's default on free ones.
    cores = os.cpu_count() or 1
    assert choose_threads(busy=cores / 2) == (1 if cores > 1 else None)
    assert choose_threads(busy=cores / 2 - 0.5) is None
    assert choose_threads() in (None, 1)


def test_busy_cores_sees_work_that_runs_now():
    """Processes spinning on every core right now count as busy cores,
    whatever the 1-minute load average remembers."""
    cores = os.cpu_count() or 1
    spin = 'import time\nend = time.time() + 6\nwhile time.time() < end: pass'
    spinners = [subprocess.Popen([sys.executable, '-c', spin])
                for _ in range(cores)]
    try:
        time.sleep(1.0)  # let them start
        busy = busy_cores(interval=1.0)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    assert busy is not None and busy >= 0.75 * cores
    assert choose_threads(busy=busy) == (1 if cores > 1 else None)


def test_missing_config_fails_the_check_step(tmp_path):
    result = run('det', '--config', str(tmp_path / 'nope.py'), '--work-dir',
                 str(tmp_path / 'work'), timeout=120)
    assert result.returncode == 1
    assert "step 'check' failed" in result.stderr


def test_foreign_data_root_fails_the_data_step(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'mine.txt').write_text('keep')
    result = run('det', '--data-root', str(data), '--work-dir',
                 str(tmp_path / 'work'), timeout=120)
    assert result.returncode == 1
    assert "step 'data' failed" in result.stderr
    assert sorted(os.listdir(data)) == ['mine.txt']


def run_tiny_quickstart(task, tmp_path):
    """``tools/quickstart.py TASK`` for 2 iterations on 4 tiny images;
    returns the work dir and the printed summary."""
    work = tmp_path / 'work'
    result = run(task, '--max-iters', '2', '--num-train', '4', '--num-val',
                 '2', '--size', '128', '--num-vis', '2', '--data-root',
                 str(tmp_path / 'data'), '--work-dir', str(work))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
    pictures = sorted(os.listdir(work / 'vis'))
    assert pictures == ['000000.png', '000001.png']
    for name in pictures:
        # Ground truth and prediction side by side, each 128 px image
        # drawn at 512 px, above the caption (and legend).
        height, width = cv2.imread(str(work / 'vis' / name)).shape[:2]
        assert width == 2 * 512 and height > 512
    # Where the semantic tokens look, named in the summary.
    assert cv2.imread(str(work / 'semantic_tokens.png')) is not None
    assert 'semantic_tokens.png' in result.stdout
    with open(work / 'metrics.json') as f:
        return work, json.load(f), result.stdout


def test_tiny_det_demo_end_to_end(tmp_path):
    work, metrics, stdout = run_tiny_quickstart('det', tmp_path)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP_50'):
        assert isinstance(metrics[key], float)
        assert -1 <= metrics[key] <= 1
    assert 'coco/bbox_mAP_50' in stdout  # the closing summary
    assert (work / 'summary.txt').is_file()


def test_tiny_seg_demo_end_to_end(tmp_path):
    _, metrics, _ = run_tiny_quickstart('seg', tmp_path)
    assert 0 <= metrics['mIoU'] <= 100  # mmseg reports percentages
