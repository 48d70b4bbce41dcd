"""The quickstart: train and evaluate a small STViT-R-Swin model on
generated data, on a CPU (``make demo`` / ``make demo-seg`` /
``make demo-cls``).

Steps, each named in the :class:`~stvit_mm.errors.StepFailed` it raises:

1. ``check``: the config and the tools exist; a fresh work dir;
2. ``data``: generate the synthetic coloured-shapes set (COCO layout for
   ``det``, ADE20K layout for ``seg``, ImageNet layout with one shape per
   image for ``cls``; reused when already complete);
3. ``train``: ``tools/train.py`` on the quickstart config, as a subprocess
   whose log is streamed (iterations, losses, ETA); the validation inside
   the loop is skipped unless ``val_during_train``, as step 4 does it;
4. ``test``: ``tools/test.py`` on the final checkpoint over the val split;
   the evaluator's metrics are written to ``<work-dir>/metrics.json``;
5. ``vis``: ground truth next to prediction for a few val images
   (:func:`stvit_mm.apis.val_pictures.draw_val_predictions`), into
   ``<work-dir>/vis/*.png``, and where the semantic tokens look on the
   first one, ``<work-dir>/semantic_tokens.png`` (not for ``cls``);

then a summary: what ran, how long, the metrics, where things are, and how
to run the real recipe.

An existing, non-empty work dir is never written into: the run goes to a
fresh sibling ``<work-dir>_<YYYYmmdd_HHMMSS>`` instead, and the summary names
it. Refusing would make a second ``make demo`` fail for no good reason, and
writing into the old dir would overwrite its checkpoint, metrics and pictures.
"""
import collections
import dataclasses
import json
import os
import os.path as osp
import sys
import time
import traceback
from typing import Dict, List, Optional

from ..errors import ConfigError, StepFailed
from ..utils.resources import find_resource, tool_script
from .threads import busy_cores, busy_cores_text, choose_threads
from .tool_runs import (cfg_options_dict, find_checkpoint, format_duration,
                        fresh_work_dir, parse_test_metrics, run_streamed)

__all__ = [
    'TASKS', 'QuickstartOptions', 'run_quickstart', 'fresh_work_dir',
    'data_cfg_options', 'plan_run', 'run_steps'
]

TASKS = {
    'det':
    dict(
        title='Cascade Mask R-CNN + STViT-R-Swin',
        kind='coco',
        config='configs/quickstart/stvit_r_swin_quickstart_coco.py',
        data_root='data/synthetic_coco',
        work_dir='work_dirs/demo',
        key_metrics=('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
                     'coco/segm_mAP_50'),
        real=('Put COCO 2017 under data/coco (annotations/instances_'
              '{train,val}2017.json, train2017/, val2017/), convert the '
              'ImageNet weights (tools/model_converters/), then:\n'
              '    python tools/train.py configs/cascade_stvit_r_swin_s_3x.py'
              '\n    python tools/test.py configs/cascade_stvit_r_swin_s_3x.py'
              ' <work_dir>/epoch_36.pth')),
    'seg':
    dict(
        title='UperNet + STViT-R-Swin',
        kind='ade',
        config='configs/quickstart/stvit_r_swin_quickstart_ade.py',
        data_root='data/synthetic_ade',
        work_dir='work_dirs/demo_seg',
        key_metrics=('mIoU', 'mAcc', 'aAcc'),
        real=('Put ADEChallengeData2016 under data/ade/ADEChallengeData2016 '
              '(images/, annotations/), convert the ImageNet weights '
              '(tools/model_converters/), then:\n'
              '    python tools/train.py '
              'configs/upernet_stvit_r_swin_s_160k_ade20k.py\n'
              '    python tools/test.py '
              'configs/upernet_stvit_r_swin_s_160k_ade20k.py '
              '<work_dir>/iter_160000.pth')),
    'cls':
    dict(
        title='ImageNet classifier, STViT-R-Swin (released ImageNet model)',
        kind='imagenet',
        config='configs/quickstart/stvit_r_swin_quickstart_in1k.py',
        data_root='data/synthetic_imagenet',
        work_dir='work_dirs/demo_cls',
        key_metrics=('accuracy/top1', ),
        size=112,
        vis=False,
        real=('Put ImageNet-1k under data/imagenet ({train,val}/<class>/'
              '*.JPEG), then (16 GPUs x 64 images, 300 epochs):\n'
              '    tools/dist_train.sh '
              'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py 16\n'
              'or evaluate the released weights (82.65 / 83.21 top-1): '
              'convert STViT-R-Swin-S.pth with tools/model_converters/'
              'stvit_r_official_to_mm.py --classifier, then\n'
              '    python tools/test.py '
              'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py <converted>')),
}

# An iteration no run reaches: ``train_cfg.val_begin`` beyond it disables the
# validation inside the training loop.
NEVER = 10**9


@dataclasses.dataclass
class QuickstartOptions:
    """What to run; the defaults are the ``make demo`` settings.

    ``config``, ``data_root``, ``work_dir`` and ``size`` (of the generated
    images) default to the task's (:data:`TASKS`; size 256 unless it says);
    relative paths are taken from the repository root.
    ``max_iters`` overrides ``train_cfg.max_iters``; ``threads`` is
    ``OMP_NUM_THREADS`` for train/test (see :func:`choose_threads`);
    ``cfg_options`` (``key=value`` items) go to train.py and test.py.
    """
    task: str
    config: Optional[str] = None
    data_root: Optional[str] = None
    work_dir: Optional[str] = None
    max_iters: Optional[int] = None
    num_train: int = 300
    num_val: int = 50
    size: Optional[int] = None
    seed: int = 0
    num_vis: int = 4
    score_thr: float = 0.5
    val_during_train: bool = False
    threads: Optional[int] = None
    cfg_options: List[str] = dataclasses.field(default_factory=list)


def image_size(opts: QuickstartOptions) -> int:
    """Side of the generated images: ``--size``, else the task's."""
    return opts.size or TASKS[opts.task].get('size', 256)


def data_cfg_options(task: str, data_root: str) -> List[str]:
    """``--cfg-options`` (``key=value`` items) that point a standard
    config of ``task`` (``'det'``, ``'seg'``) at ``data_root`` (absolute)."""
    root = data_root.rstrip('/') + '/'
    opts = [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]
    if task == 'det':
        # CocoMetric reads its own copy of the ground truth.
        ann = root + 'annotations/instances_val.json'
        opts += [f'val_evaluator.ann_file={ann}',
                 f'test_evaluator.ann_file={ann}']
    return opts


def _rel(path: str) -> str:
    """Path relative to the current directory when it lies inside it."""
    here = osp.abspath(os.curdir)
    return osp.relpath(path, here) if path.startswith(here + os.sep) else path


def summary_text(opts: QuickstartOptions, run: Dict) -> str:
    """The closing report printed (and saved as ``summary.txt``).

    Args:
        opts (QuickstartOptions): What was asked for.
        run (dict): What the steps produced (see :func:`run_quickstart`).

    Returns:
        str: Several lines of text.
    """
    spec, timings, metrics = TASKS[opts.task], run['timings'], run['metrics']
    iters = (f'{opts.max_iters} iterations' if opts.max_iters else
             "the config's iterations")
    lines = [
        f'STViT-R-Swin demo ({opts.task}: {spec["title"]}) finished in '
        f'{format_duration(sum(timings.values()))}.',
        f'  data   : {_rel(run["data_root"])} ({opts.num_train} train / '
        f'{opts.num_val} val images, {image_size(opts)}px, seed {opts.seed}; '
        f'{"generated" if run["generated"] else "reused"}, '
        f'{format_duration(timings["data"])})',
        f'  train  : {_rel(run["config"])}, {iters}, '
        f'{format_duration(timings["train"])} -> {_rel(run["checkpoint"])}',
        f'  test   : tools/test.py on the {opts.num_val} val images, '
        f'{format_duration(timings["test"])}',
        '  threads: ' + (f'OMP_NUM_THREADS={run["threads"]}'
                         if run.get('threads') else "torch's default"),
    ]
    shown = [k for k in spec['key_metrics'] if k in metrics]
    shown += sorted(k for k in metrics if k not in shown)
    lines += [f'      {k:<22} {metrics[k]:.4f}' for k in shown]
    lines.append(f'  metrics: {_rel(run["metrics_path"])}')
    if 'vis' in timings:
        lines.append(
            f'  vis    : {_rel(run["vis_dir"])}/ ({len(run["pictures"])} '
            'pictures, left ground truth, right prediction; '
            f'{format_duration(timings["vis"])})')
    if run.get('tokens'):
        lines.append(f'  tokens : {_rel(run["tokens"])} (where the semantic '
                     'tokens look; docs/visualization.md)')
    lines += [
        f'  logs   : {_rel(run["work_dir"])}/ (train.log, test.log and '
        "mmengine's timestamped folders)",
        '',
        'The real thing: ' + spec['real'],
    ]
    return '\n'.join(lines)


def step_check(opts: QuickstartOptions) -> Dict:
    """Resolve the paths of the run and make sure the tools exist."""
    spec = TASKS[opts.task]
    try:
        config = osp.abspath(find_resource(opts.config or spec['config']))
        tools = [tool_script(name) for name in ('train.py', 'test.py')]
    except ConfigError as e:
        raise StepFailed('check', str(e)) from e
    requested = osp.abspath(opts.work_dir or spec['work_dir'])
    work_dir = fresh_work_dir(requested)
    if work_dir != requested:
        print(f'[demo] {requested} already has content; writing this run '
              f'to {work_dir} instead so nothing there is overwritten.')
    os.makedirs(work_dir, exist_ok=True)
    return dict(
        config=config,
        train_tool=tools[0],
        test_tool=tools[1],
        work_dir=work_dir,
        data_root=osp.abspath(opts.data_root or spec['data_root']))


def step_data(opts: QuickstartOptions, run: Dict) -> None:
    """Generate the synthetic set, or reuse a complete one."""
    kind = TASKS[opts.task]['kind']
    print(f'[demo] data: {kind} set in {run["data_root"]}', flush=True)
    try:
        from ..datasets.synthetic import generate_synthetic_dataset
        run['generated'] = generate_synthetic_dataset(
            kind, run['data_root'], num_train=opts.num_train,
            num_val=opts.num_val, size=image_size(opts), seed=opts.seed)
    except Exception as e:  # any failure here is the data step's
        traceback.print_exc()
        raise StepFailed('data', f'{type(e).__name__}: {e}') from e


def step_train(opts: QuickstartOptions, run: Dict) -> None:
    """Train with tools/train.py and find the final checkpoint."""
    options = list(run['options'])
    if not opts.val_during_train:
        # The loop validates at its last iteration even when val_interval
        # is larger; test.py would then repeat the same evaluation, which
        # costs about a minute of the demo's budget on 2 cores. Inserted
        # before the user's --cfg-options so those still win.
        options.insert(
            len(options) - len(opts.cfg_options),
            f'train_cfg.val_begin={NEVER}')
    run_streamed('train', [
        sys.executable,
        run['train_tool'], run['config'],
        '--work-dir', run['work_dir'], '--cfg-options', *options
    ], osp.join(run['work_dir'], 'train.log'), run.get('threads'))
    run['checkpoint'] = find_checkpoint(run['work_dir'])


def step_test(opts: QuickstartOptions, run: Dict) -> None:
    """Evaluate the checkpoint with tools/test.py; write metrics.json."""
    test_dir = osp.join(run['work_dir'], 'test')
    lines = run_streamed('test', [
        sys.executable,
        run['test_tool'], run['config'],
        run['checkpoint'], '--work-dir', test_dir, '--cfg-options',
        *run['options']
    ], osp.join(run['work_dir'], 'test.log'), run.get('threads'))
    metrics = parse_test_metrics(test_dir, lines)
    if not metrics:
        raise StepFailed('test', 'tools/test.py finished but no metrics '
                         f'were found in its output or in {test_dir}')
    run['metrics'] = metrics
    run['metrics_path'] = osp.join(run['work_dir'], 'metrics.json')
    with open(run['metrics_path'], 'w') as f:
        json.dump(metrics, f, indent=2, sort_keys=True)


def step_vis(opts: QuickstartOptions, run: Dict) -> None:
    """Draw ground truth | prediction for a few val images."""
    vis_dir = run['vis_dir'] = osp.join(run['work_dir'], 'vis')
    os.makedirs(vis_dir, exist_ok=True)
    print(f'[demo] vis: drawing {opts.num_vis} val images into {vis_dir}',
          flush=True)
    try:
        from .inference import init_model
        from .val_pictures import draw_val_predictions, first_val_image
        if run.get('threads'):
            import torch
            torch.set_num_threads(run['threads'])
        model = init_model(run['config'], run['checkpoint'], 'cpu',
                           cfg_options_dict(run['options']))
        run['pictures'] = draw_val_predictions(
            model, run['data_root'], vis_dir, opts.num_vis,
            score_thr=opts.score_thr, opacity=0.6)
        from ..analysis.vis_tokens import uses_stvit, vis_semantic_tokens
        if uses_stvit(model.cfg.model):  # not the Swin twin of --compare
            run['tokens'] = osp.join(run['work_dir'], 'semantic_tokens.png')
            vis_semantic_tokens(
                run['config'], run['checkpoint'],
                first_val_image(model.cfg.default_scope, run['data_root']),
                run['tokens'], cfg_options=cfg_options_dict(run['options']))
    except Exception as e:  # name the step under the traceback
        traceback.print_exc()
        raise StepFailed('vis', f'{type(e).__name__}: {e}') from e


def plan_run(opts: QuickstartOptions, threads: Optional[int] = None,
             busy: Optional[float] = None) -> Dict:
    """Step ``check``, the ``--cfg-options`` both train.py and test.py get
    (data paths, ``max_iters``, then the user's, which win), and the
    threads (printed).

    Args:
        opts (QuickstartOptions): What to run.
        threads (int, optional): ``OMP_NUM_THREADS`` for the steps
            (:func:`choose_threads`; None: torch's default).
        busy (float, optional): Cores busy with other work when it was
            decided (:func:`busy_cores`), for the log.

    Returns:
        dict: The run so far (see :func:`run_quickstart`).
    """
    run = step_check(opts)
    run['options'] = data_cfg_options(opts.task, run['data_root'])
    if opts.max_iters:
        run['options'].append(f'train_cfg.max_iters={opts.max_iters}')
    run['options'] += list(opts.cfg_options)
    run['threads'] = threads
    print(f'[demo] {os.cpu_count()} cores, {busy_cores_text(busy)} busy '
          'with other work: ' +
          (f'OMP_NUM_THREADS={threads}' if threads else
           "torch's default thread count"),
          flush=True)
    return run


def run_steps(opts: QuickstartOptions, run: Dict) -> None:
    """Steps ``data``, ``train``, ``test`` and ``vis`` in order, timed into
    ``run['timings']``."""
    run['timings'] = timings = collections.OrderedDict()
    steps = [('data', step_data), ('train', step_train), ('test', step_test)]
    if TASKS[opts.task].get('vis', True):
        steps.append(('vis', step_vis))
    for name, step in steps:
        start = time.time()
        step(opts, run)
        timings[name] = time.time() - start


def run_quickstart(opts: QuickstartOptions) -> Dict:
    """Run the steps in order, then print and save the summary.

    Args:
        opts (QuickstartOptions): What to run.

    Returns:
        dict: What the steps produced: ``work_dir``, ``checkpoint``,
        ``metrics`` (name to value), ``pictures`` (paths), ``timings``
        (step to seconds), ...

    Raises:
        StepFailed: Naming the step that failed.
    """
    # Decided from what runs now, before our own steps start.
    busy = busy_cores()
    threads = choose_threads(opts.threads, busy)
    run = plan_run(opts, threads, busy)
    run_steps(opts, run)
    text = summary_text(opts, run)
    with open(osp.join(run['work_dir'], 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    print('\n' + '=' * 79 + '\n' + text + '\n' + '=' * 79)
    return run
