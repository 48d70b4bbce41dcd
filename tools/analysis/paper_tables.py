"""The paper's Table 5 (COCO) and Table 14 (ADE20K) from evaluation results.

One row per run, labelled by its config, with the backbone GFLOPs measured
from the config at the paper's input size, the paper's row (from
configs/metafile.yml) and the difference. RESULTS is what tools/test.py
wrote: ``<work_dir>/<timestamp>/<timestamp>.json``, a work dir holding one,
or the quickstart's ``metrics.json``. Without runs: both tables with the
paper's configs and empty accuracy. See
:mod:`stvit_mm.analysis.paper_tables`.

Examples::

    python tools/analysis/paper_tables.py
    python tools/analysis/paper_tables.py \\
        --det configs/cascade_stvit_r_swin_s_3x.py=work_dirs/test_stvit_s \\
        --det configs/cascade_swin_s_3x.py=work_dirs/test_swin_s \\
        --seg configs/upernet_stvit_r_swin_s_160k_ade20k.py=work_dirs/ade_s \\
        --out tables.csv
"""
import argparse
import os.path as osp

from stvit_mm.analysis.options import parse_settings
from stvit_mm.analysis.paper_tables import (PaperTablesSettings,
                                            paper_tables_report)
from stvit_mm.errors import exit_on_error


def parse_args(argv=None) -> PaperTablesSettings:
    parser = argparse.ArgumentParser(
        argument_default=argparse.SUPPRESS,  # defaults: PaperTablesSettings
        description="The paper's Table 5 (Cascade Mask R-CNN, COCO) and "
        'Table 14 (UperNet, ADE20K) from evaluation results, with measured '
        "backbone GFLOPs and the paper's rows.")
    parser.add_argument(
        '--det', action='append', metavar='CONFIG[=RESULTS]',
        help='a Table 5 run (repeatable): a detection config and its '
        'tools/test.py results (JSON file or work dir); without RESULTS, '
        'or while RESULTS does not exist, the row has no accuracy')
    parser.add_argument(
        '--seg', action='append', metavar='CONFIG[=RESULTS]',
        help='a Table 14 run (repeatable), as --det')
    parser.add_argument(
        '--runs-only', action='store_true',
        help="list only the given configs (default: also the paper's)")
    parser.add_argument('--out', help='also write the tables to this .csv, '
                        '.json or .md file')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out file')
    return parse_settings(parser, PaperTablesSettings, argv)


def main(argv=None) -> None:
    settings = parse_args(argv)
    with exit_on_error(osp.basename(__file__)):
        print(paper_tables_report(settings), end='')


if __name__ == '__main__':
    main()
