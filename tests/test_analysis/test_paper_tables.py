"""tools/analysis/paper_tables.py and :mod:`stvit_mm.analysis.paper_tables`:
Table 5 / Table 14 from crafted metric files with known numbers, FLOPs
measured by the project's counter, the paper's rows from the metafile.

The small quickstart configs keep the FLOPs counting fast; one paper config
(STViT-R-Swin-S) checks the paper and difference rows.
"""
import json

import pytest

from helpers.analysis import column, run_analysis_tool, table_rows
from helpers.paths import QUICKSTART_DET, QUICKSTART_SEG
from stvit_mm.analysis import build_backbone
from stvit_mm.analysis.flops import paper_input_sizes
from stvit_mm.analysis.paper_tables import (PaperTablesSettings, Run,
                                            build_tables, paper_tables_report,
                                            tables_markdown)
from stvit_mm.analysis.results import TABLES, read_results
from stvit_mm.analysis.tables import format_gflops
from stvit_mm.apis import load_config
from stvit_mm.errors import InputError
from stvit_mm.utils.flops import count_macs
from stvit_mm.utils.metafile import BACKBONE_GFLOPS, paper_numbers

TOOL = 'tools/analysis/paper_tables.py'
SWIN_DET = 'configs/quickstart/swin_quickstart_coco.py'
SWIN_SEG = 'configs/quickstart/swin_quickstart_ade.py'
STVIT_S = 'configs/cascade_stvit_r_swin_s_3x.py'

# What CocoMetric writes (fractions; -1: no objects of that size), with the
# timing entries mmengine adds.
DET_METRICS = {
    'coco/bbox_mAP': 0.523, 'coco/bbox_mAP_50': 0.711,
    'coco/bbox_mAP_75': 0.564, 'coco/bbox_mAP_s': 0.371,
    'coco/bbox_mAP_m': 0.55, 'coco/bbox_mAP_l': 0.66,
    'coco/segm_mAP': 0.451, 'coco/segm_mAP_50': 0.684,
    'coco/segm_mAP_75': 0.492, 'coco/segm_mAP_s': -1.0,
    'data_time': 0.01, 'time': 0.5
}
SEG_METRICS = {'mIoU': 47.91, 'mAcc': 60.12, 'aAcc': 81.3}


def write_json(path, record):
    path.write_text(json.dumps(record))
    return str(path)


def measured_gflops(config, dataset):
    """The backbone's GFLOPs at the paper's input, counted here."""
    shape = paper_input_sizes()[dataset]
    macs = count_macs(build_backbone(load_config(config)), (1, 3, *shape))
    return macs / 1e9


def by_source(rows, header, config):
    """The rows of one config, keyed by the Row column."""
    out, current = {}, None
    for row in rows:
        current = column(header, row, 'Config') or current
        if current == config:
            out[column(header, row, 'Row')] = row
    return out


def test_det_table_holds_the_numbers_and_the_paper(tmp_path):
    results = write_json(tmp_path / 'det.json', DET_METRICS)
    tables = build_tables({'det': [
        Run(STVIT_S, results), Run(QUICKSTART_DET, results),
        Run(SWIN_DET, str(tmp_path / 'not_run_yet'))]}, runs_only=True)
    text = tables_markdown(tables)
    header, rows = table_rows(text)
    gflops = header[3]
    assert gflops == 'GFLOPs (800x1280)'

    # This run: the file's numbers in percent, COCO's -1 left empty.
    ours = by_source(rows, header, STVIT_S)
    expected = dict(zip(['AP^b', 'AP^b_50', 'AP^b_75', 'AP^b_S', 'AP^m',
                         'AP^m_50', 'AP^m_75', 'AP^m_S'],
                        ['52.3', '71.1', '56.4', '37.1', '45.1', '68.4',
                         '49.2', '']))
    for title, value in expected.items():
        assert column(header, ours['this run'], title) == value, title
    # The paper's row from the metafile, and the difference.
    paper = paper_numbers(STVIT_S)
    assert column(header, ours['paper'], 'AP^b') == f"{paper['box AP']:.1f}"
    assert column(header, ours['paper'], 'AP^m_S') == (
        f"{paper['mask APs']:.1f}")
    assert column(header, ours['difference'], 'AP^b') == (
        f"{52.3 - paper['box AP']:+.1f}")
    assert column(header, ours['difference'], 'AP^m_S') == ''
    # (S's own count is checked against the paper's in test_flops.py.)
    measured = float(column(header, ours['this run'], gflops))
    assert column(header, ours['paper'], gflops) == (
        f'{paper[BACKBONE_GFLOPS]:.1f}')
    assert float(column(header, ours['difference'], gflops)) == (
        pytest.approx(measured - paper[BACKBONE_GFLOPS], abs=0.11))

    # The quickstart pair: measured FLOPs and their ratio, no paper row; the
    # twin without results is a row with empty accuracy.
    stvit = by_source(rows, header, QUICKSTART_DET)
    swin = by_source(rows, header, SWIN_DET)
    assert set(stvit) == set(swin) == {'this run'}
    stvit_gflops = measured_gflops(QUICKSTART_DET, 'coco')
    swin_gflops = measured_gflops(SWIN_DET, 'coco')
    assert column(header, stvit['this run'], gflops) == format_gflops(
        stvit_gflops)
    assert column(header, swin['this run'], gflops) == format_gflops(
        swin_gflops)
    assert column(header, stvit['this run'], 'STViT-R / Swin') == (
        f'{stvit_gflops / swin_gflops:.3f}')
    assert column(header, stvit['this run'], 'AP^b') == '52.3'
    assert all(c == '' for c in swin['this run'][5:])
    assert 'no results at' in text and 'not_run_yet' in text


def test_tool_writes_the_seg_table_and_refuses_to_overwrite(tmp_path):
    """The command line: Table 14 only, a missing run, --out as JSON."""
    results = write_json(tmp_path / 'seg.json', SEG_METRICS)
    out = tmp_path / 'tables.json'
    proc = run_analysis_tool(TOOL, '--seg', f'{QUICKSTART_SEG}={results}',
                             '--seg', SWIN_SEG, '--runs-only', '--out',
                             str(out))
    assert proc.returncode == 0, proc.stderr
    assert 'Table 5' not in proc.stdout
    header, rows = table_rows(proc.stdout)
    assert header[3] == 'GFLOPs (512x512)'
    assert [r[0] for r in rows] == [QUICKSTART_SEG, SWIN_SEG]
    assert column(header, rows[0], 'mIoU') == '47.9'
    assert column(header, rows[1], 'mIoU') == ''

    records = json.loads(out.read_text())['tables'][0]['rows']
    assert [r['config'] for r in records] == [QUICKSTART_SEG, SWIN_SEG]
    assert records[0]['mIoU'] == pytest.approx(47.91)
    assert records[1]['mIoU'] is None
    stvit, swin = (measured_gflops(c, 'ade')
                   for c in (QUICKSTART_SEG, SWIN_SEG))
    assert records[0]['backbone_gflops'] == pytest.approx(stvit, abs=1e-4)
    assert records[0]['stvit_r_over_swin'] == pytest.approx(
        stvit / swin, abs=1e-4)

    # An existing --out is refused before anything is measured.
    before = out.read_text()
    with pytest.raises(FileExistsError, match='--overwrite'):
        paper_tables_report(PaperTablesSettings(
            seg=[QUICKSTART_SEG], out=str(out)))
    assert out.read_text() == before


def test_tool_refuses_results_of_the_other_task(tmp_path):
    seg = write_json(tmp_path / 'seg_results.json', SEG_METRICS)
    proc = run_analysis_tool(TOOL, '--det', f'{QUICKSTART_DET}={seg}')
    assert proc.returncode == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith('paper_tables.py: error: ')
    assert seg in message and 'give it with --seg' in message
    assert 'Traceback' not in proc.stderr


def test_read_results_refuses_wrong_metric_names(tmp_path):
    spec = TABLES['det']
    # Boxes only: Table 5 also needs the mask APs, named in the message.
    boxes = write_json(tmp_path / 'boxes.json', {
        k: v for k, v in DET_METRICS.items() if 'segm' not in k})
    with pytest.raises(InputError, match='segm_mAP') as excinfo:
        read_results(boxes, spec)
    assert boxes in str(excinfo.value)
    not_json = tmp_path / 'log.txt'
    not_json.write_text('coco/bbox_mAP: 0.5')
    with pytest.raises(InputError, match=str(not_json)):
        read_results(str(not_json), spec)


def test_read_results_finds_the_test_tools_json_in_a_work_dir(tmp_path):
    """tools/test.py --work-dir DIR: mmengine dumps the metrics to
    DIR/<timestamp>/<timestamp>.json; a dir without it is a missing run."""
    spec = TABLES['seg']
    assert read_results(str(tmp_path), spec) is None
    run = tmp_path / '20240101_120000'
    run.mkdir()
    write_json(run / '20240101_120000.json', dict(SEG_METRICS, step=1))
    assert read_results(str(tmp_path), spec) == {'mIoU': 47.91}
