"""End-to-end CPU demo on generated data: ``make demo`` / ``make demo-seg``.

Steps, each reported by name when it fails (the exit status is then 1):

1. ``data``: generate the synthetic coloured-shapes set (COCO layout for
   ``det``, ADE20K layout for ``seg``; reused when already complete);
2. ``train``: ``tools/train.py`` on the quickstart config, as a subprocess
   whose log is streamed (iterations, losses, ETA); the validation inside
   the loop is skipped unless ``--val-during-train``, as step 3 does it;
3. ``test``: ``tools/test.py`` on the final checkpoint over the val split;
   the evaluator's metrics are written to ``<work-dir>/metrics.json``;
4. ``vis``: ground truth next to prediction for a few val images, drawn by
   mmdet's ``DetLocalVisualizer`` / mmseg's ``SegLocalVisualizer``, into
   ``<work-dir>/vis/*.png``;
5. a summary: what ran, how long, the metrics, where things are, and how to
   run the real recipe.

Examples::

    python tools/run_demo.py det
    python tools/run_demo.py seg
    python tools/run_demo.py det --max-iters 2 --num-train 8 --num-val 4 \
        --data-root /tmp/shapes --work-dir /tmp/demo

An existing, non-empty work dir is never written into: the run goes to a
fresh sibling ``<work-dir>_<YYYYmmdd_HHMMSS>`` instead, and the summary names
it. Refusing would make a second ``make demo`` fail for no good reason, and
writing into the old dir would overwrite its checkpoint, metrics and pictures.
"""
import argparse
import collections
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
import traceback
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

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
}

# An iteration no run reaches: ``train_cfg.val_begin`` beyond it disables the
# validation inside the training loop.
NEVER = 10**9

# Keys in the test log that describe the run, not the model.
NON_METRIC_KEYS = {'data_time', 'time', 'step', 'iter', 'epoch', 'memory'}


class StepFailed(RuntimeError):
    """A demo step failed; ``step`` names it for the user."""

    def __init__(self, step: str, message: str):
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Train and evaluate a quickstart STViT-R-Swin model on '
        'generated data (no COCO, no GPU needed).')
    parser.add_argument('task', choices=sorted(TASKS),
                        help='det: Cascade Mask R-CNN; seg: UperNet')
    parser.add_argument('--config', help='config (default: the quickstart '
                        'config of the task)')
    parser.add_argument('--data-root', help='where the synthetic data is '
                        'generated/reused (default: data/synthetic_coco or '
                        'data/synthetic_ade)')
    parser.add_argument('--work-dir', help='output dir (default: '
                        'work_dirs/demo or work_dirs/demo_seg)')
    parser.add_argument('--max-iters', type=int,
                        help='override train_cfg.max_iters')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, default=256,
                        help='side of the generated images')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the generated data')
    parser.add_argument('--num-vis', type=int, default=4,
                        help='val images to draw predictions on')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='score threshold for drawn detections')
    parser.add_argument('--val-during-train', action='store_true',
                        help="keep the config's validation inside train.py "
                        '(by default skipped: tools/test.py evaluates the '
                        'final checkpoint on the same split right after)')
    parser.add_argument('--threads', type=int,
                        help='OMP_NUM_THREADS for train/test (default: 1 '
                        'when the cores are already busy at the start, '
                        "else torch's default)")
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='extra overrides passed to train.py/test.py')
    return parser.parse_args(argv)


def repo_path(path: str) -> str:
    """Absolute path; relative paths are taken from the repository root."""
    return osp.abspath(path if osp.isabs(path) else osp.join(REPO, path))


def fresh_work_dir(work_dir: str) -> str:
    """The work dir to use without touching anything a user already has.

    Args:
        work_dir (str): The requested work dir.

    Returns:
        str: ``work_dir`` if it is missing or empty, else a new sibling
        ``<work_dir>_<timestamp>`` (with a counter if that exists too).
    """
    if not osp.exists(work_dir) or (osp.isdir(work_dir)
                                    and not os.listdir(work_dir)):
        return work_dir
    stem = f"{work_dir.rstrip(os.sep)}_{time.strftime('%Y%m%d_%H%M%S')}"
    candidate, n = stem, 1
    while osp.exists(candidate):
        candidate, n = f'{stem}_{n}', n + 1
    return candidate


def data_cfg_options(task: str, data_root: str) -> List[str]:
    """``--cfg-options`` that point a standard config at ``data_root``.

    Args:
        task (str): ``'det'`` or ``'seg'``.
        data_root (str): Absolute dataset directory.

    Returns:
        list[str]: ``key=value`` items.
    """
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


def choose_threads(requested: Optional[int] = None) -> Optional[int]:
    """The OpenMP/torch thread count for the train and test subprocesses.

    Measured on the 2-core reference machine (quickstart detector, batch 2):
    with the cores free, torch's default of one thread per core is fastest
    (about 1.1 s/iter against 1.25 with one thread); when other jobs keep
    the cores busy (load ~3.5), two threads slow down to 4-7 s/iter while
    one thread keeps about 2 s/iter (OpenMP threads wait for each other at
    every op). So one thread is used
    when, at the start of the demo, the 1-minute load average already shows
    other work on at least half of the cores; otherwise torch decides.

    Args:
        requested (int, optional): ``--threads``; wins when given.

    Returns:
        int | None: Threads to set, or None to leave torch's default (and an
        ``OMP_NUM_THREADS`` the user exported) alone.
    """
    if requested:
        return requested
    if 'OMP_NUM_THREADS' in os.environ:
        return None
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return None
    return 1 if cores > 1 and load >= cores / 2 else None


def _load_average() -> str:
    """The 1-minute load average as text ('n/a' where unknown)."""
    try:
        return f'{os.getloadavg()[0]:.2f}'
    except (AttributeError, OSError):
        return 'n/a'


def run_streamed(step: str, cmd: List[str], log_path: str,
                 threads: Optional[int] = None) -> List[str]:
    """Run a command, echoing its output live and saving it to a file.

    Args:
        step (str): Step name for the error message.
        cmd (list[str]): Command line.
        log_path (str): Where the combined stdout/stderr is copied.
        threads (int, optional): ``OMP_NUM_THREADS`` for the command.

    Returns:
        list[str]: The last 400 lines of output.

    Raises:
        StepFailed: If the command exits non-zero.
    """
    print(f'[demo] {step}: {" ".join(cmd)}', flush=True)
    tail = collections.deque(maxlen=400)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            tail.append(line)
    if proc.returncode != 0:
        raise StepFailed(
            step, f'{osp.basename(cmd[1])} exited with status '
            f'{proc.returncode}; see the output above or {log_path}')
    return list(tail)


def find_checkpoint(work_dir: str) -> str:
    """The checkpoint the training run finished with.

    Args:
        work_dir (str): The training work dir.

    Returns:
        str: Path of the last checkpoint.

    Raises:
        StepFailed: If there is none.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        if path and not osp.isabs(path):
            path = osp.join(work_dir, path)
        if osp.isfile(path):
            return path
    ckpts = glob.glob(osp.join(work_dir, '*.pth'))
    if not ckpts:
        raise StepFailed('train', f'no checkpoint was written in {work_dir}')
    return max(ckpts, key=osp.getmtime)


_METRIC_RE = re.compile(r'([\w/.-]+): (-?\d+(?:\.\d+)?(?:e-?\d+)?)')


def parse_test_metrics(test_dir: str, lines: Sequence[str]) -> Dict:
    """Read the evaluator's metrics of a finished ``tools/test.py`` run.

    mmengine's LoggerHook dumps them to ``<work_dir>/<timestamp>/
    <timestamp>.json``; the final ``(test)`` log line is the fallback.

    Args:
        test_dir (str): The ``--work-dir`` given to test.py.
        lines (Sequence[str]): Its output.

    Returns:
        dict: Metric name to value, timing entries removed.
    """
    for path in sorted(glob.glob(osp.join(test_dir, '*', '*.json')),
                       key=osp.getmtime, reverse=True):
        try:
            with open(path) as f:
                record = json.load(f)
        except ValueError:
            continue
        metrics = {
            k: v
            for k, v in record.items() if k not in NON_METRIC_KEYS
            and isinstance(v, (int, float))
        }
        if metrics:
            return metrics
    for line in reversed(lines):
        if '(test)' in line:
            metrics = {
                k: float(v)
                for k, v in _METRIC_RE.findall(line.split('(test)', 1)[1])
                if k not in NON_METRIC_KEYS
            }
            if metrics:
                return metrics
    return {}


def _import_project() -> None:
    """Register STViTRSwin and the safe checkpoint loading (importing
    ``stvit_mm`` does both), as the configs' ``custom_imports`` do for
    train.py/test.py."""
    import stvit_mm  # noqa: F401


def visualize_det(cfg_path: str, ckpt: str, data_root: str, out_dir: str,
                  cfg_options: Dict, num: int, score_thr: float) -> List[str]:
    """Draw ground truth | prediction for the first val images (COCO).

    Args:
        cfg_path (str): Config file.
        ckpt (str): Checkpoint.
        data_root (str): COCO-layout data root.
        out_dir (str): Where the pngs go.
        cfg_options (dict): Overrides merged into the config.
        num (int): Number of images.
        score_thr (float): Detections below it are not drawn.

    Returns:
        list[str]: Written files.
    """
    import mmcv
    import numpy as np
    import torch
    from mmdet.apis import inference_detector, init_detector
    from mmdet.structures.mask import BitmapMasks
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.structures import InstanceData
    from pycocotools.coco import COCO

    _import_project()
    model = init_detector(cfg_path, ckpt, device='cpu',
                          cfg_options=cfg_options)
    visualizer = DetLocalVisualizer(name=f'stvit_demo_det_{id(model)}')
    visualizer.dataset_meta = model.dataset_meta
    coco = COCO(osp.join(data_root, 'annotations', 'instances_val.json'))
    cat_ids = sorted(coco.getCatIds())
    written = []
    for img_id in sorted(coco.getImgIds())[:num]:
        info = coco.loadImgs([img_id])[0]
        img_path = osp.join(data_root, 'val', info['file_name'])
        result = inference_detector(model, img_path)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                  a['bbox'][1] + a['bbox'][3]] for a in anns]
        gt = InstanceData()
        gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        gt.labels = torch.tensor(
            [cat_ids.index(a['category_id']) for a in anns], dtype=torch.long)
        masks = np.stack([coco.annToMask(a) for a in anns]) if anns else \
            np.zeros((0, info['height'], info['width']), np.uint8)
        gt.masks = BitmapMasks(masks, info['height'], info['width'])
        result.gt_instances = gt
        out_file = osp.join(out_dir, osp.splitext(info['file_name'])[0] +
                            '.png')
        visualizer.add_datasample(
            info['file_name'],
            mmcv.imread(img_path, channel_order='rgb'),
            data_sample=result,
            draw_gt=True,
            draw_pred=True,
            pred_score_thr=score_thr,
            out_file=out_file)
        written.append(out_file)
    return written


def visualize_seg(cfg_path: str, ckpt: str, data_root: str, out_dir: str,
                  cfg_options: Dict, num: int) -> List[str]:
    """Draw ground truth | prediction for the first val images (ADE).

    Args:
        cfg_path (str): Config file.
        ckpt (str): Checkpoint.
        data_root (str): ADE-layout data root.
        out_dir (str): Where the pngs go.
        cfg_options (dict): Overrides merged into the config.
        num (int): Number of images.

    Returns:
        list[str]: Written files.
    """
    import mmcv
    import numpy as np
    import torch
    from mmengine.structures import PixelData
    from mmseg.apis import inference_model, init_model
    from mmseg.visualization import SegLocalVisualizer

    _import_project()
    model = init_model(cfg_path, ckpt, device='cpu', cfg_options=cfg_options)
    reduce_zero_label = model.cfg.test_dataloader.dataset.get(
        'reduce_zero_label', False)
    visualizer = SegLocalVisualizer(name=f'stvit_demo_seg_{id(model)}',
                                    alpha=0.6)
    visualizer.dataset_meta = model.dataset_meta
    img_dir = osp.join(data_root, 'images', 'validation')
    written = []
    for name in sorted(os.listdir(img_dir))[:num]:
        stem = osp.splitext(name)[0]
        result = inference_model(model, osp.join(img_dir, name))
        label = mmcv.imread(
            osp.join(data_root, 'annotations', 'validation', stem + '.png'),
            flag='unchanged').astype(np.int64)
        if reduce_zero_label:  # as LoadAnnotations does: 0 -> ignore (255)
            label = np.where(label == 0, 255, label - 1)
        result.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        out_file = osp.join(out_dir, stem + '.png')
        visualizer.add_datasample(
            name,
            mmcv.imread(osp.join(img_dir, name), channel_order='rgb'),
            data_sample=result,
            draw_gt=True,
            draw_pred=True,
            out_file=out_file)
        written.append(out_file)
    return written


def cfg_options_dict(options: Sequence[str]) -> Dict:
    """Parse ``key=value`` items the way mmengine's ``DictAction`` does."""
    from mmengine.config import DictAction
    parsed = {}
    for item in options:
        key, value = item.split('=', 1)
        parsed[key] = DictAction._parse_iterable(value)
    return parsed


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; ``9.6`` -> ``'10s'``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes}m{secs:02d}s' if minutes else f'{secs}s'


def _rel(path: str) -> str:
    """Path relative to the repository root when it lies inside it."""
    return osp.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def summary_text(args: argparse.Namespace, run: Dict) -> str:
    """The closing report printed (and saved as ``summary.txt``).

    Args:
        args (argparse.Namespace): The demo's arguments.
        run (dict): What the steps produced (see :func:`main`).

    Returns:
        str: Several lines of text.
    """
    spec, timings, metrics = TASKS[args.task], run['timings'], run['metrics']
    iters = (f'{args.max_iters} iterations' if args.max_iters else
             "the config's iterations")
    lines = [
        f'STViT-R-Swin demo ({args.task}: {spec["title"]}) finished in '
        f'{format_duration(sum(timings.values()))}.',
        f'  data   : {_rel(run["data_root"])} ({args.num_train} train / '
        f'{args.num_val} val images, {args.size}px, seed {args.seed}; '
        f'{"generated" if run["generated"] else "reused"}, '
        f'{format_duration(timings["data"])})',
        f'  train  : {_rel(run["config"])}, {iters}, '
        f'{format_duration(timings["train"])} -> {_rel(run["checkpoint"])}',
        f'  test   : tools/test.py on the {args.num_val} val images, '
        f'{format_duration(timings["test"])}',
        '  threads: ' + (f'OMP_NUM_THREADS={run["threads"]}'
                         if run.get('threads') else "torch's default"),
    ]
    shown = [k for k in spec['key_metrics'] if k in metrics]
    shown += sorted(k for k in metrics if k not in shown)
    lines += [f'      {k:<22} {metrics[k]:.4f}' for k in shown]
    lines += [
        f'  metrics: {_rel(run["metrics_path"])}',
        f'  vis    : {_rel(run["vis_dir"])}/ ({len(run["pictures"])} '
        'pictures, left ground truth, right prediction; '
        f'{format_duration(timings["vis"])})',
        f'  logs   : {_rel(run["work_dir"])}/ (train.log, test.log and '
        "mmengine's timestamped folders)",
        '',
        'The real thing: ' + spec['real'],
    ]
    return '\n'.join(lines)


def step_check(args: argparse.Namespace) -> Dict:
    """Resolve the paths of the run and make sure the tools exist."""
    spec = TASKS[args.task]
    config = repo_path(args.config or spec['config'])
    for path in (config, osp.join(REPO, 'tools', 'train.py'),
                 osp.join(REPO, 'tools', 'test.py')):
        if not osp.isfile(path):
            raise StepFailed('check', f'{path} does not exist')
    requested = repo_path(args.work_dir or spec['work_dir'])
    work_dir = fresh_work_dir(requested)
    if work_dir != requested:
        print(f'[demo] {requested} already has content; writing this run '
              f'to {work_dir} instead so nothing there is overwritten.')
    os.makedirs(work_dir, exist_ok=True)
    return dict(
        config=config,
        work_dir=work_dir,
        data_root=repo_path(args.data_root or spec['data_root']))


def step_data(args: argparse.Namespace, run: Dict) -> None:
    """Generate the synthetic set, or reuse a complete one."""
    kind = TASKS[args.task]['kind']
    print(f'[demo] data: {kind} set in {run["data_root"]}', flush=True)
    try:
        from stvit_mm.datasets.synthetic import generate_synthetic_dataset
        run['generated'] = generate_synthetic_dataset(
            kind, run['data_root'], num_train=args.num_train,
            num_val=args.num_val, size=args.size, seed=args.seed)
    except Exception as e:  # any failure here is the data step's
        traceback.print_exc()
        raise StepFailed('data', f'{type(e).__name__}: {e}') from e


def step_train(args: argparse.Namespace, run: Dict) -> None:
    """Train with tools/train.py and find the final checkpoint."""
    options = list(run['options'])
    if not args.val_during_train:
        # The loop validates at its last iteration even when val_interval
        # is larger; test.py would then repeat the same evaluation, which
        # costs about a minute of the demo's budget on 2 cores. Inserted
        # before the user's --cfg-options so those still win.
        options.insert(
            len(options) - len(args.cfg_options),
            f'train_cfg.val_begin={NEVER}')
    run_streamed('train', [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), run['config'], '--work-dir',
        run['work_dir'], '--cfg-options', *options
    ], osp.join(run['work_dir'], 'train.log'), run.get('threads'))
    run['checkpoint'] = find_checkpoint(run['work_dir'])


def step_test(args: argparse.Namespace, run: Dict) -> None:
    """Evaluate the checkpoint with tools/test.py; write metrics.json."""
    test_dir = osp.join(run['work_dir'], 'test')
    lines = run_streamed('test', [
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), run['config'], run['checkpoint'],
        '--work-dir', test_dir, '--cfg-options', *run['options']
    ], osp.join(run['work_dir'], 'test.log'), run.get('threads'))
    metrics = parse_test_metrics(test_dir, lines)
    if not metrics:
        raise StepFailed('test', 'tools/test.py finished but no metrics '
                         f'were found in its output or in {test_dir}')
    run['metrics'] = metrics
    run['metrics_path'] = osp.join(run['work_dir'], 'metrics.json')
    with open(run['metrics_path'], 'w') as f:
        json.dump(metrics, f, indent=2, sort_keys=True)


def step_vis(args: argparse.Namespace, run: Dict) -> None:
    """Draw ground truth | prediction for a few val images."""
    vis_dir = run['vis_dir'] = osp.join(run['work_dir'], 'vis')
    os.makedirs(vis_dir, exist_ok=True)
    print(f'[demo] vis: drawing {args.num_vis} val images into {vis_dir}',
          flush=True)
    try:
        if run.get('threads'):
            import torch
            torch.set_num_threads(run['threads'])
        options = cfg_options_dict(run['options'])
        if args.task == 'det':
            run['pictures'] = visualize_det(
                run['config'], run['checkpoint'], run['data_root'], vis_dir,
                options, args.num_vis, args.score_thr)
        else:
            run['pictures'] = visualize_seg(
                run['config'], run['checkpoint'], run['data_root'], vis_dir,
                options, args.num_vis)
    except Exception as e:  # name the step under the traceback
        traceback.print_exc()
        raise StepFailed('vis', f'{type(e).__name__}: {e}') from e


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo's steps in order.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if None.

    Returns:
        int: 0 on success, 1 when a step failed.
    """
    args = parse_args(argv)
    try:
        run = step_check(args)
        # The overrides both train.py and test.py get; the user's last.
        run['options'] = data_cfg_options(args.task, run['data_root'])
        if args.max_iters:
            run['options'].append(f'train_cfg.max_iters={args.max_iters}')
        run['options'] += list(args.cfg_options)
        # Decided before our own steps raise the load average.
        run['threads'] = choose_threads(args.threads)
        print(f'[demo] {os.cpu_count()} cores, 1-min load average '
              f'{_load_average()}: ' +
              (f'OMP_NUM_THREADS={run["threads"]}' if run['threads'] else
               "torch's default thread count"),
              flush=True)
        run['timings'] = timings = collections.OrderedDict()
        for name, step in (('data', step_data), ('train', step_train),
                           ('test', step_test), ('vis', step_vis)):
            start = time.time()
            step(args, run)
            timings[name] = time.time() - start
    except StepFailed as e:
        print(f'[demo] {e}', file=sys.stderr)
        return 1
    text = summary_text(args, run)
    with open(osp.join(run['work_dir'], 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    print('\n' + '=' * 79 + '\n' + text + '\n' + '=' * 79)
    return 0


if __name__ == '__main__':
    sys.exit(main())
