"""The paper's Table 5 (COCO) and Table 14 (ADE20K) from evaluation results.

Each run (a config and the metrics its evaluation wrote) gets three rows:

* ``this run``: the backbone GFLOPs measured from the config at the paper's
  input size (:func:`stvit_mm.analysis.flops.measure_config`; COCO 800x1280,
  ADE20K 512x512, from ``configs/metafile.yml``) and the accuracy read from
  the results (empty when there are none yet);
* ``paper``: the paper's figures for that config, from the metafile
  (:func:`stvit_mm.utils.metafile.paper_numbers`); configs the metafile
  does not list (the quickstarts, your own) have no paper row;
* ``difference``: this run minus the paper, where both are known.

``STViT-R / Swin`` is the backbone GFLOPs ratio of an STViT-R-Swin row to
the Swin row of the same table with the same width and depths.

Which metrics each table shows, and how they are read from what
``tools/test.py`` wrote, is :mod:`stvit_mm.analysis.results`. The tables
print as markdown and are written as CSV, JSON or markdown
(:func:`write_tables`), never over an existing file unless told to.
"""
import csv
import dataclasses
import io
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

from stvit_mm.apis import load_config
from stvit_mm.engine.fileio import atomic_write
from stvit_mm.errors import ConfigError
from stvit_mm.utils.metafile import (BACKBONE_GFLOPS, load_metafile,
                                     paper_numbers)
from stvit_mm.utils.resources import find_resource, relative_to_resources

from .flops import measure_config, paper_input_sizes
from .models import PAIR_CONFIGS
from .results import TABLES, TableSpec, read_results
from .tables import format_gflops, markdown_table

__all__ = [
    'Run', 'PaperTablesSettings', 'parse_run', 'build_tables',
    'tables_markdown', 'write_tables', 'paper_tables_report'
]

ROW_RUN, ROW_PAPER, ROW_DIFF = 'this run', 'paper', 'difference'
RATIO = 'STViT-R / Swin'
BACKBONE_NAMES = {'STViTRSwin': 'STViT-R-Swin', 'SwinTransformer': 'Swin'}


class Run(NamedTuple):
    """A config and the results of evaluating it (None: not run yet)."""
    config: str
    results: Optional[str] = None


def parse_run(text: str) -> Run:
    """``CONFIG=RESULTS`` or ``CONFIG`` (a run without results yet)."""
    config, _, results = text.partition('=')
    if not config:
        raise ConfigError(f'expected CONFIG=RESULTS, got {text!r}')
    return Run(config, results or None)


@dataclasses.dataclass
class PaperTablesSettings:
    """What ``tools/analysis/paper_tables.py`` prints and writes.

    Args:
        det (list[str]): Table 5 runs, ``CONFIG[=RESULTS]`` each.
        seg (list[str]): Table 14 runs.
        out (str, optional): Also write the tables to this ``.csv``,
            ``.json`` or ``.md`` file.
        overwrite (bool): Replace an existing ``out``.
        runs_only (bool): Leave out the paper's configs that were not
            given (by default every table lists them).

    Raises:
        ConfigError: A run is not ``CONFIG[=RESULTS]``, ``out`` has
            another suffix, or ``runs_only`` comes without runs.
    """
    det: List[str] = dataclasses.field(default_factory=list)
    seg: List[str] = dataclasses.field(default_factory=list)
    out: Optional[str] = None
    overwrite: bool = False
    runs_only: bool = False

    def __post_init__(self):
        self.runs = {key: [parse_run(t) for t in getattr(self, key)]
                     for key in TABLES}
        if self.runs_only and not (self.det or self.seg):
            raise ConfigError('--runs-only needs runs (--det / --seg)')
        if self.out and not self.out.endswith(('.csv', '.json', '.md')):
            raise ConfigError(f'--out must end in .csv, .json or .md, got '
                              f'{self.out}')


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
def _repo_relative(path: str) -> str:
    """The metafile's form of a config path (``configs/...``) when it is
    one of the package's configs."""
    try:
        return relative_to_resources(find_resource(path))
    except ConfigError:
        return path


def _backbone(cfg, listed: Optional[dict]) -> tuple:
    """(display name, pairing key) of a config's backbone."""
    backbone = cfg.model.backbone
    key = (backbone.get('embed_dims'), tuple(backbone.get('depths', ())))
    if listed and listed.get('Metadata', {}).get('Backbone'):
        return listed['Metadata']['Backbone'], key
    name = BACKBONE_NAMES.get(backbone.type, backbone.type)
    depths = '-'.join(str(d) for d in key[1])
    return f'{name} (C={key[0]}, {depths})', key


def _diff(a, b):
    return None if a is None or b is None else a - b


def _table(spec: TableSpec, runs: Sequence[tuple], runs_only: bool,
           metafile: Dict[str, dict]) -> Dict:
    """One table's data (rows of dicts, notes, the FLOPs input size) from
    ``(run, accuracy)`` pairs."""
    shape = paper_input_sizes()[spec.dataset]
    # The paper's configs first (in its order), each with its runs or as a
    # missing row; then the other configs in the order given. A config
    # evaluated twice gets a row per run.
    slots = {} if runs_only else {
        c: [] for size in PAIR_CONFIGS.values() for c in size[spec.dataset]}
    for run, accuracy in runs:
        slots.setdefault(_repo_relative(run.config), []).append(
            (run.results, accuracy))
    entries, notes = [], []
    for config, results in slots.items():
        cfg = load_config(config)
        if cfg.default_scope != spec.scope:
            raise ConfigError(
                f'{config} is an {cfg.default_scope} config, not one for '
                f'{spec.name} ({spec.scope}): give it with '
                f'--{"seg" if spec.key == "det" else "det"}')
        name, pair_key = _backbone(cfg, metafile.get(config))
        common = dict(
            config=config, backbone=name, pair_key=pair_key,
            is_swin=cfg.model.backbone.type == 'SwinTransformer',
            macs=measure_config(config, shape, whole_model=False)['macs'],
            paper=paper_numbers(config) if config in metafile else None)
        if common['paper'] is None:
            notes.append(f'{config}: not in configs/metafile.yml, so no '
                         'paper row.')
        for path, accuracy in results or [(None, None)]:
            if path:
                notes.append(f'{config}: ' + (
                    f'results from {path}.' if accuracy is not None else
                    f'no results at {path} yet (a missing row).'))
            entries.append(dict(common, accuracy=accuracy))
    if any(e['paper'] for e in entries):
        notes.insert(0, spec.note)
    baselines = {e['pair_key']: e for e in entries if e['is_swin']}
    rows = []
    for e in entries:
        base = None if e['is_swin'] else baselines.get(e['pair_key'])
        rows += _entry_rows(e, base, spec)
    return dict(key=spec.key, title=spec.title, input_size=list(shape),
                columns=[c.title for c in spec.columns], rows=rows,
                notes=notes)


def _entry_rows(entry: Dict, base: Optional[Dict],
                spec: TableSpec) -> List[Dict]:
    """The rows of one config: this run, and the paper and the difference
    when the metafile lists it. ``base`` is the Swin row of its size."""
    run = dict(source=ROW_RUN, gflops=entry['macs'] / 1e9,
               ratio=base and entry['macs'] / base['macs'],
               accuracy=entry['accuracy'] or {})
    rows = [run]
    if entry['paper'] is not None:
        gflops = entry['paper'].get(BACKBONE_GFLOPS)
        base_gflops = base and (base['paper'] or {}).get(BACKBONE_GFLOPS)
        paper = dict(
            source=ROW_PAPER, gflops=gflops,
            ratio=gflops / base_gflops if gflops and base_gflops else None,
            accuracy={c.title: entry['paper'].get(c.paper)
                      for c in spec.columns})
        rows += [paper, dict(
            source=ROW_DIFF, gflops=_diff(run['gflops'], paper['gflops']),
            ratio=_diff(run['ratio'], paper['ratio']),
            accuracy={t: _diff(run['accuracy'].get(t), v)
                      for t, v in paper['accuracy'].items()})]
    for row in rows:
        row.update(config=entry['config'], backbone=entry['backbone'])
    return rows


def build_tables(runs: Dict[str, Sequence[Run]],
                 runs_only: bool = False) -> List[Dict]:
    """The tables' data, FLOPs measured and results read.

    Args:
        runs (dict): ``'det'`` / ``'seg'`` to the runs of that table; a
            table is built for each key given (empty list: no results).
        runs_only (bool): Only the given configs; by default the paper's
            configs of each table come first, then the other given ones.

    Returns:
        list[dict]: Per table ``key``, ``title``, ``input_size`` (H, W of
        the FLOPs), ``columns`` (accuracy titles), ``rows`` (``config``,
        ``backbone``, ``source`` (this run / paper / difference),
        ``gflops``, ``ratio``, ``accuracy``: title to value or None) and
        ``notes``.

    Raises:
        ConfigError: A config is missing or belongs to the other table.
        InputError: A results file cannot be used (see
            :func:`read_results`).
    """
    metafile = load_metafile()
    # Every results file is read before anything is measured, so that a
    # wrong one is refused at once.
    read = {
        key: [(run, read_results(run.results, TABLES[key])
               if run.results else None) for run in runs[key]]
        for key in TABLES if key in runs
    }
    return [_table(TABLES[key], pairs, runs_only, metafile)
            for key, pairs in read.items()]


def _cell(value: Optional[float], source: str, digits: int) -> str:
    if value is None:
        return ''
    if source == ROW_DIFF:
        return f'{value:+.{digits}f}'
    return f'{value:.{digits}f}'


def tables_markdown(tables: Sequence[Dict]) -> str:
    """The tables as markdown, each under its title with its notes.

    A config's paper and difference rows follow its own row, with the
    config and backbone cells left blank.
    """
    parts = []
    for table in tables:
        h, w = table['input_size']
        headers = ['Config', 'Backbone', 'Row', f'GFLOPs ({h}x{w})', RATIO,
                   *table['columns']]
        rows = []
        for row in table['rows']:
            source = row['source']
            # Measured GFLOPs as get_flops.py prints them (3 digits below
            # 10); the paper's and the differences with one decimal.
            label, gflops = (([row['config'], row['backbone']],
                              format_gflops(row['gflops']))
                             if source == ROW_RUN else
                             (['', ''], _cell(row['gflops'], source, 1)))
            rows.append([
                *label, source, gflops, _cell(row['ratio'], source, 3),
                *(_cell(row['accuracy'].get(t), source, 1)
                  for t in table['columns'])])
        notes = ''.join(f'\n- {n}' for n in table['notes'])
        parts.append(f"### {table['title']}\n\n"
                     f'{markdown_table(headers, rows)}\n{notes}')
    return '\n\n'.join(parts) + (
        '\n\nGFLOPs: backbone multiply-accumulates (the papers\' "FLOPs") '
        'of one image at the paper\'s input size, counted by '
        'stvit_mm.utils.flops.count_macs; accuracy in percent; an empty '
        "cell is not known (or COCO's -1: no objects of that size).\n")


def _records(tables: Sequence[Dict]) -> List[Dict]:
    """One flat record per row (CSV and JSON)."""
    records = []
    for table in tables:
        for row in table['rows']:
            record = dict(
                table=table['title'].split(':')[0], config=row['config'],
                backbone=row['backbone'], row=row['source'],
                input='x'.join(map(str, table['input_size'])),
                backbone_gflops=row['gflops'], stvit_r_over_swin=row['ratio'])
            record.update(
                {t: row['accuracy'].get(t) for t in table['columns']})
            records.append({
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in record.items()
            })
    return records


def write_tables(tables: Sequence[Dict], out: str,
                 overwrite: bool = False) -> None:
    """Write the tables to ``out``: ``.json`` (the tables with one record
    per row), ``.csv`` (one line per row) or ``.md`` (as printed).

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    _check_out(out, overwrite)
    if out.endswith('.md'):
        text = tables_markdown(tables)
    elif out.endswith('.json'):
        text = json.dumps(dict(tables=[
            dict(title=t['title'], input_size=t['input_size'],
                 notes=t['notes'], rows=_records([t])) for t in tables
        ]), indent=2) + '\n'
    else:
        records = _records(tables)
        fields = list(dict.fromkeys(k for r in records for k in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fields, lineterminator='\n')
        writer.writeheader()
        writer.writerows(records)
        text = buffer.getvalue()
    atomic_write(text.encode('utf-8'), out)


def _check_out(out: str, overwrite: bool) -> None:
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'{out} exists; pass --overwrite to replace '
                              'it, or choose another --out')


def paper_tables_report(settings: PaperTablesSettings) -> str:
    """What ``tools/analysis/paper_tables.py`` prints: the tables of the
    given runs (both tables with the paper's configs when none is given),
    also written to ``settings.out``.

    Returns:
        str: The markdown, with a closing line naming ``out``.

    Raises:
        ConfigError, InputError: See :func:`build_tables`.
        FileExistsError: ``out`` exists and ``overwrite`` is False (checked
            before anything is measured).
    """
    if settings.out:
        _check_out(settings.out, settings.overwrite)
    runs = {k: v for k, v in settings.runs.items() if v} or settings.runs
    tables = build_tables(runs, settings.runs_only)
    text = tables_markdown(tables)
    if settings.out:
        write_tables(tables, settings.out, settings.overwrite)
        text += f'\nWritten to {settings.out}\n'
    return text
