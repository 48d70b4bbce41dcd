"""The side-by-side run on generated data: ``make compare`` (Cascade Mask
R-CNN) and ``make compare-seg`` (UperNet), i.e. ``tools/quickstart.py
{det,seg} --compare``.

The STViT-R-Swin quickstart and its Swin twin
(``configs/quickstart/swin_quickstart_{coco,ade}.py``: the same recipe,
data, iterations and seed; only the backbone differs) go one after the
other through the quickstart's steps (:mod:`stvit_mm.apis.quickstart`:
data, train, test, vis), each into its own folder of one fresh work dir,
with the same generated set, thread count and seed (``randomness.seed``,
the data's seed too). Then:

* ``table``: the mini Table 5 / Table 14 of the two runs, by the paper-table
  tool (:mod:`stvit_mm.analysis.paper_tables`: backbone GFLOPs measured at
  the paper's input size, accuracy from each run's ``metrics.json``),
  printed and saved as ``tables.md`` and ``tables.json``;
* ``vis_<model>.png``: one picture per model, the same val images stacked
  (left ground truth, right the model's prediction);

and a summary (``summary.txt``). A failed step names itself and the model
(``step 'train (Swin)' failed: ...``). An existing, non-empty work dir is
never written into (:func:`~stvit_mm.apis.quickstart.fresh_work_dir`).
"""
import dataclasses
import os
import os.path as osp
import time
from typing import Dict, List, Sequence

from ..errors import StepFailed, StvitMMError
from .quickstart import (TASKS, QuickstartOptions, _rel, fresh_work_dir,
                         image_size, plan_run, run_steps)
from .threads import choose_threads
from .tool_runs import format_duration

__all__ = ['MODELS', 'WORK_DIRS', 'run_compare', 'stack_pictures']

#: Per task, the models compared: (folder, label, config), STViT-R first.
MODELS = {
    'det': (('stvit_r', 'STViT-R-Swin',
             'configs/quickstart/stvit_r_swin_quickstart_coco.py'),
            ('swin', 'Swin', 'configs/quickstart/swin_quickstart_coco.py')),
    'seg': (('stvit_r', 'STViT-R-Swin',
             'configs/quickstart/stvit_r_swin_quickstart_ade.py'),
            ('swin', 'Swin', 'configs/quickstart/swin_quickstart_ade.py')),
}
#: The default work dir per task.
WORK_DIRS = {'det': 'work_dirs/compare', 'seg': 'work_dirs/compare_seg'}


def stack_pictures(paths: Sequence[str], out_file: str, label: str) -> str:
    """Stack pictures vertically under a one-line caption.

    Args:
        paths (Sequence[str]): The pictures (any widths; narrower ones are
            padded white on the right).
        out_file (str): Where the stack is written.
        label (str): The caption.

    Returns:
        str: ``out_file``.
    """
    import cv2
    import numpy as np
    images = [cv2.imread(p) for p in paths]
    width = max(img.shape[1] for img in images)
    header = np.full((28, width, 3), 255, np.uint8)
    cv2.putText(header, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header] + [
        cv2.copyMakeBorder(img, 0, 0, 0, width - img.shape[1],
                           cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for img in images
    ]
    if not cv2.imwrite(out_file, np.vstack(rows)):
        raise StepFailed('vis', f'could not write {out_file}')
    return out_file


def _train_model(opts: QuickstartOptions, label: str) -> Dict:
    """One model through the quickstart's steps; a failure names the model
    beside the step."""
    try:
        run = plan_run(opts, opts.threads)
        run_steps(opts, run)
    except StepFailed as e:
        message = str(e).split(' failed: ', 1)[-1]
        raise StepFailed(f'{e.step} ({label})', message) from e
    return run


def _table(task: str, runs: List[Dict]) -> list:
    """The mini table of the runs, by the paper-table tool."""
    from ..analysis.paper_tables import Run, build_tables
    try:
        return build_tables(
            {task: [Run(r['config'], r['metrics_path']) for r in runs]},
            runs_only=True)
    except StvitMMError as e:  # a config or metrics file it cannot use
        raise StepFailed('table', str(e)) from e


def _summary(opts: QuickstartOptions, top: str, runs: List[Dict],
             table: str, seconds: float) -> str:
    """The closing report (printed and saved as ``summary.txt``)."""
    from .config import load_config
    first = runs[0]
    iters = opts.max_iters or load_config(
        first['config']).train_cfg.max_iters
    lines = [
        f'Side by side on generated data ({opts.task}: '
        f'{TASKS[opts.task]["title"].split(" + ")[0]}, STViT-R-Swin vs '
        f'Swin) finished in {format_duration(seconds)}.',
        f'  data    : {_rel(first["data_root"])} ({opts.num_train} train / '
        f'{opts.num_val} val images, {image_size(opts)}px, seed {opts.seed})',
        f'  recipe  : {iters} iterations each, seed {opts.seed}, ' +
        (f'OMP_NUM_THREADS={first["threads"]}' if first['threads'] else
         "torch's default threads"),
    ]
    for run in runs:
        t = run['timings']
        lines.append(
            f'  {run["label"]:<13}: {_rel(run["config"])}; train '
            f'{format_duration(t["train"])}, test '
            f'{format_duration(t["test"])} -> {_rel(run["work_dir"])}/')
    lines += ['', table.rstrip(), '']
    lines += [
        f'  tables  : {_rel(top)}/tables.md, tables.json',
        '  pictures: ' + ', '.join(_rel(r['stack']) for r in runs
                                    if r.get('stack')) +
        f' (the same {opts.num_vis} val images; left ground truth, right '
        'the prediction)',
        '',
        "The paper's tables from full-scale results: tools/analysis/"
        'paper_tables.py --det CONFIG=RESULTS --seg CONFIG=RESULTS '
        "(README: Reproducing the paper's tables).",
    ]
    return '\n'.join(lines)


def run_compare(opts: QuickstartOptions) -> Dict:
    """Train, evaluate and draw the STViT-R-Swin quickstart and its Swin
    twin, then print the mini paper table and a summary.

    Args:
        opts (QuickstartOptions): As for the quickstart; ``work_dir`` is the
            folder of both runs (default :data:`WORK_DIRS`), ``config``
            must be None (the configs are :data:`MODELS`), ``seed`` seeds
            the data and both trainings.

    Returns:
        dict: ``work_dir``, ``runs`` (per model, what
        :func:`~stvit_mm.apis.quickstart.run_quickstart` returns, plus
        ``label`` and ``stack``, its picture), ``tables`` (the data of
        :func:`~stvit_mm.analysis.paper_tables.build_tables`).

    Raises:
        StepFailed: Naming the step (and model) that failed.
    """
    from ..analysis.paper_tables import tables_markdown, write_tables
    if opts.task not in MODELS:
        raise StepFailed('check', f'--compare runs the {"/".join(MODELS)} '
                         f'quickstarts (the paper\'s detection and '
                         f'segmentation tables), not {opts.task}')
    if opts.config:
        raise StepFailed('check', '--compare trains the quickstart config '
                         'and its Swin twin; it takes no --config')
    start = time.time()
    requested = osp.abspath(opts.work_dir or WORK_DIRS[opts.task])
    top = fresh_work_dir(requested)
    if top != requested:
        print(f'[compare] {requested} already has content; writing to '
              f'{top} instead so nothing there is overwritten.')
    os.makedirs(top, exist_ok=True)
    # One decision for both, from what runs before our own steps start:
    # the second model must not get other threads than the first.
    threads = choose_threads(opts.threads)
    cfg_options = [f'randomness.seed={opts.seed}', *opts.cfg_options]
    models = MODELS[opts.task]
    runs = []
    for i, (folder, label, config) in enumerate(models):
        eta = ''
        if runs:
            per_model = (time.time() - start) / len(runs)
            done = time.strftime(
                '%H:%M', time.localtime(time.time() + per_model *
                                        (len(models) - i)))
            eta = (f'; same recipe, so about {format_duration(per_model)} '
                   f'per model: done around {done}')
        print(f'[compare] model {i + 1}/{len(models)}: {label} ({config})'
              f'{eta}', flush=True)
        run = _train_model(
            dataclasses.replace(opts, config=config, threads=threads,
                                work_dir=osp.join(top, folder),
                                cfg_options=cfg_options), label)
        run['label'] = label
        if run.get('pictures'):
            run['stack'] = stack_pictures(
                run['pictures'], osp.join(top, f'vis_{folder}.png'),
                f'{label}: ground truth | prediction')
        runs.append(run)
    print('[compare] table: measuring backbone GFLOPs', flush=True)
    tables = _table(opts.task, runs)
    table = tables_markdown(tables)
    for name in ('tables.md', 'tables.json'):
        write_tables(tables, osp.join(top, name))
    text = _summary(opts, top, runs, table, time.time() - start)
    with open(osp.join(top, 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    print('\n' + '=' * 79 + '\n' + text + '\n' + '=' * 79)
    return dict(work_dir=top, runs=runs, tables=tables)
