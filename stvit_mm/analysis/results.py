"""The metrics of the paper's tables, read from evaluation results.

What Table 5 (Cascade Mask R-CNN 3x, COCO) and Table 14 (UperNet, ADE20K)
report (:data:`TABLES`), and :func:`read_results`, which takes them from
what ``tools/test.py`` leaves: mmengine's LoggerHook dumps the evaluator's
metrics to ``<work_dir>/<timestamp>/<timestamp>.json``, and the quickstart
copies them to ``<work_dir>/metrics.json``. A results path may be either
file or a work dir holding one. Metric names are matched without the
evaluator's prefix (``coco/bbox_mAP`` -> ``bbox_mAP``); COCO's fractions
become percent like the paper's figures; mmseg's mIoU already is.
"""
import dataclasses
import json
import os.path as osp
from typing import Dict, NamedTuple, Optional

from stvit_mm.apis.tool_runs import metrics_from_record, parse_test_metrics
from stvit_mm.errors import InputError

__all__ = ['Column', 'TableSpec', 'TABLES', 'read_results']


class Column(NamedTuple):
    """An accuracy column: its title, the evaluator's metric name (without
    prefix) and the metafile's name for the paper's figure."""
    title: str
    metric: str
    paper: str


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables.

    Args:
        key (str): ``'det'`` or ``'seg'`` (the tool's option).
        title (str): Printed above the table.
        dataset (str): ``'coco'`` or ``'ade'`` (:data:`PAIR_CONFIGS`).
        scope (str): The configs' ``default_scope``.
        columns (tuple[Column]): The accuracy columns.
        scale (float): Results to percent (COCO's AP is a fraction).
        note (str): The evaluation protocol of the paper's figures.
    """
    key: str
    title: str
    dataset: str
    scope: str
    columns: tuple
    scale: float
    note: str

    @property
    def name(self) -> str:
        """``'Table 5'`` / ``'Table 14'``."""
        return self.title.split(':')[0]


def _ap_columns(letter: str, kind: str, paper: str) -> tuple:
    """AP, AP50, AP75 and AP small of COCO's ``kind`` (bbox / segm)."""
    return tuple(
        Column(f'AP^{letter}{sub}', f'{kind}_mAP{suffix}', f'{paper} AP{p}')
        for sub, suffix, p in (('', '', ''), ('_50', '_50', '50'),
                               ('_75', '_75', '75'), ('_S', '_s', 's')))


TABLES = {
    'det': TableSpec(
        'det', 'Table 5: Cascade Mask R-CNN 3x, COCO', 'coco', 'mmdet',
        _ap_columns('b', 'bbox', 'box') + _ap_columns('m', 'segm', 'mask'),
        100.,
        "The paper's accuracy: COCO val2017, single scale 1333x800 "
        '(tools/test.py CONFIG CKPT).'),
    'seg': TableSpec(
        'seg', 'Table 14: UperNet 160k, ADE20K', 'ade', 'mmseg',
        (Column('mIoU', 'mIoU', 'mIoU(ms+flip)'), ), 1.,
        "The paper's mIoU: ADE20K val, multi-scale + flip "
        '(tools/test.py CONFIG CKPT --tta).'),
}


def _load_json(path: str):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(
            f'{path} is not a metrics JSON file (tools/test.py writes '
            f'<work_dir>/<timestamp>/<timestamp>.json): {e}') from e


def read_results(path: str, spec: TableSpec) -> Optional[Dict]:
    """The table's accuracy columns from an evaluation's results.

    Args:
        path (str): A metrics JSON file, or a work dir holding
            ``metrics.json`` or ``<timestamp>/<timestamp>.json``.
        spec (TableSpec): The table it is read for.

    Returns:
        dict | None: Column title to percent (None where the evaluator
        reported COCO's -1, no objects of that size); None when ``path``
        does not exist or is a work dir without results yet.

    Raises:
        InputError: The file is not JSON, or holds other metrics than the
            table needs (another task's, or other names); the message names
            the file.
    """
    if not osp.exists(path):
        return None
    source = path
    if osp.isdir(path):
        source = osp.join(path, 'metrics.json')
        if osp.isfile(source):
            metrics = metrics_from_record(_load_json(source))
        else:
            source, metrics = path, parse_test_metrics(path, [])
            if not metrics:
                return None
    else:
        metrics = metrics_from_record(_load_json(path))
    by_name = {k.rsplit('/', 1)[-1]: v for k, v in metrics.items()}
    missing = [c.metric for c in spec.columns if c.metric not in by_name]
    if missing:
        hint = ''
        for other in TABLES.values():
            if other is not spec and all(c.metric in by_name
                                         for c in other.columns):
                hint = (f' It holds {other.name} results '
                        f'({other.scope}): give it with --{other.key}.')
        raise InputError(
            f'{source} does not hold {spec.name} results: '
            f'it lacks {", ".join(missing)} (found: '
            f'{", ".join(sorted(metrics)) or "no metrics"}).{hint}')
    return {
        c.title: (by_name[c.metric] * spec.scale
                  if by_name[c.metric] >= 0 else None)
        for c in spec.columns
    }
