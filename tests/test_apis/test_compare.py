"""tools/quickstart.py --compare (``make compare-seg``): the STViT-R-Swin
quickstart and its Swin twin trained for 2 iterations on tiny generated
data, evaluated, drawn and tabled; and how its failures are named."""
import json
import os
import subprocess
import sys

import cv2
import pytest
from mmengine.config import Config

from helpers.paths import QUICKSTART_SEG, REPO
from stvit_mm.analysis.results import TABLES, read_results
from stvit_mm.apis.compare import MODELS, run_compare
from stvit_mm.apis.label_pictures import panel_scale
from stvit_mm.apis.quickstart import QuickstartOptions
from stvit_mm.errors import StepFailed

SIZE = 96


def test_tiny_seg_compare_end_to_end(tmp_path):
    # An earlier run's work dir: never written into.
    work = tmp_path / 'compare'
    work.mkdir()
    (work / 'mine.txt').write_text('keep')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'quickstart.py'), 'seg',
         '--compare', '--max-iters', '2', '--num-train', '4', '--num-val',
         '2', '--size', str(SIZE), '--num-vis', '2', '--data-root',
         str(tmp_path / 'data'), '--work-dir', str(work)],
        capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert sorted(os.listdir(work)) == ['mine.txt']
    (top, ) = [p for p in tmp_path.iterdir() if p.name.startswith('compare_')]

    # Progress: the second model's start says when both will be done.
    assert "model 2/2: Swin" in proc.stdout and 'done around' in proc.stdout
    assert 'Table 14' in proc.stdout and 'Side by side' in proc.stdout

    configs = [config for _, _, config in MODELS['seg']]
    assert configs[0] == QUICKSTART_SEG
    records = json.loads((top / 'tables.json').read_text())
    records = records['tables'][0]['rows']
    assert [r['config'] for r in records] == configs
    spec = TABLES['seg']
    for record, (folder, _, config) in zip(records, MODELS['seg']):
        metrics = json.loads((top / folder / 'metrics.json').read_text())
        assert record['mIoU'] == pytest.approx(metrics['mIoU'], abs=1e-4)
        # What tools/test.py itself dumped reads the same.
        assert read_results(str(top / folder / 'test'), spec) == {
            'mIoU': pytest.approx(metrics['mIoU'])}
        # Both trained with the same seed.
        dumped = top / folder / os.path.basename(config)
        assert Config.fromfile(str(dumped)).randomness.seed == 0
    stvit, swin = records
    assert stvit['stvit_r_over_swin'] == pytest.approx(
        stvit['backbone_gflops'] / swin['backbone_gflops'], abs=1e-3)

    # One picture per model of the same two val images: caption, then
    # ground truth | prediction per image, each panel drawn at 512 px or
    # more above its own caption and legend.
    shapes = [cv2.imread(str(top / f'vis_{folder}.png')).shape
              for folder in ('stvit_r', 'swin')]
    panel = SIZE * panel_scale((SIZE, SIZE))
    assert shapes[0] == shapes[1]
    assert shapes[0][1] == 2 * panel and shapes[0][0] > 28 + 2 * panel
    assert (top / 'summary.txt').is_file() and (top / 'tables.md').is_file()


def test_compare_names_the_failed_step_and_model(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'mine.txt').write_text('keep')
    with pytest.raises(StepFailed,
                       match=r"step 'data \(STViT-R-Swin\)' failed"):
        run_compare(QuickstartOptions('det', data_root=str(data),
                                      work_dir=str(tmp_path / 'work')))
    assert os.listdir(data) == ['mine.txt']
    with pytest.raises(StepFailed, match="step 'check' failed"):
        run_compare(QuickstartOptions('det', config=QUICKSTART_SEG))
