"""tools/analysis/get_flops.py and :mod:`stvit_mm.analysis.flops` on small
settings (the command line runs as a subprocess where its exit status is
checked)."""
import pytest

from helpers.analysis import column, run_analysis_tool as run_tool, table_rows
from helpers.paths import REPO
from stvit_mm.analysis import (FlopsSettings, build_model, count_macs,
                               count_whole_model, flops_report)
from stvit_mm.apis import load_config

QUICKSTART_DET = REPO / 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = REPO / 'configs/quickstart/stvit_r_swin_quickstart_ade.py'


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


def test_get_flops_counts_the_classifier_beside_mmpretrain_swin():
    """An ImageNet config: counted at 224x224 by default, followed by
    mmpretrain's Swin of its width, counted the same way, and the ratio;
    with --whole-model, of the whole classifiers too (mode='tensor')."""
    out = flops_report(FlopsSettings(
        configs=['configs/imagenet/stvit_r_swin_s_16xb64_in1k.py'],
        whole_model=True))
    header, rows = table_rows(out)
    assert [column(header, r, 'Backbone') for r in rows[:2]] == [
        'STViTRSwin', 'SwinTransformer']
    assert rows[1][0] == 'mmpretrain swin-small_16xb64_in1k.py'
    assert {column(header, r, 'Input') for r in rows[:2]} == {'224x224'}
    stvit, swin = (float(column(header, r, 'GFLOPs')) for r in rows[:2])
    # Swin-S is 8.7 GMACs at 224 (Swin paper: 8.7G).
    assert swin == pytest.approx(8.7, abs=0.1)
    ratio = float(column(header, rows[2], 'GFLOPs'))
    assert ratio == pytest.approx(stvit / swin, abs=0.01)
    assert ratio < 1
    # The whole classifiers add the same head (768 x 1000 MACs, below the
    # table's digits) to both.
    models = [float(column(header, r, 'Model GFLOPs')) for r in rows[:2]]
    assert models == pytest.approx([stvit, swin], abs=0.01)
    assert (float(column(header, rows[2], 'Model GFLOPs')) ==
            pytest.approx(models[0] / models[1], abs=0.01))
    assert 'mmengine' not in out  # no build notices in the table


def test_whole_classifier_count_is_backbone_plus_head():
    """A classifier's whole count: its backbone, then the linear head on
    the pooled features (pooling counts no MACs)."""
    cfg = load_config('configs/quickstart/stvit_r_swin_quickstart_in1k.py')
    model = build_model(cfg)
    shape = (2, 3, 112, 112)
    fc = model.head.fc
    assert (count_whole_model(model, shape) - count_macs(model.backbone, shape)
            == shape[0] * fc.in_features * fc.out_features)


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
