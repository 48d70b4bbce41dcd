"""The device check of a config's backbone, and its report.

What ``tools/analysis/device_check.py`` does (:func:`check_config`): the
checks of :mod:`stvit_mm.analysis.device_check` on a config's
``model.backbone`` (the tool's default: STViT-R-Swin-S of
``configs/cascade_stvit_r_swin_s_3x.py``) with random weights moved off
their init, printed as markdown tables (:func:`markdown_report`) and
optionally written as JSON. Only the config file is read: no OpenMMLab
library's models are imported, and mmcv's compiled ops are not needed.
"""
import json
from typing import Dict, Optional

import torch
from mmengine.config import Config

from stvit_mm.utils.resources import find_resource
from stvit_mm.errors import ConfigError

from .device_check import run_device_check
from .tables import markdown_table

__all__ = ['check_config', 'load_backbone_cfg', 'markdown_report']


def markdown_report(results: Dict) -> str:
    """The results of a device check as markdown tables.

    Args:
        results (dict): What :func:`~stvit_mm.analysis.device_check.
            run_device_check` returns.

    Returns:
        str: The setting, the output and training tables, and ``ALL
        PASSED`` or ``SOME CHECKS FAILED`` on the last line.
    """
    s = results['setting']
    gpu = f" ({s['gpu']})" if s.get('gpu') else ''
    head = (f"Device {s['device']}{gpu} against "
            f"{s['ref_device']} fp32, torch {s['torch']}, TF32 off, "
            f"embed_dims {s['embed_dims']}, depths {s['depths']}, layer "
            f"scales {s['layer_scale']}. Relative error = "
            'max|a-b| / max|b| per output.')
    out_rows = [[r['label'], r['size'], r['precision'], r['against'],
                 *(f'{e:.1e}' for e in r['errors']), f"{r['bound']:g}",
                 'yes' if r['finite'] else 'NO',
                 'ok' if r['passed'] else 'FAIL'] for r in results['outputs']]
    n = max((len(r['errors']) for r in results['outputs']), default=0)
    text = [head, '', markdown_table(
        ['pad_mask', 'Input', 'Precision', 'Against',
         *(f'out{i}' for i in range(n)), 'Bound', 'Finite', 'Result'],
        out_rows)]
    if results['train']:
        train_rows = [[r['precision'], f"{r['size']} x{r['batch']}",
                       len(r['losses']), r['skipped'],
                       f"{r['with_grad']}/{r['params']}", r['nonfinite_grad'],
                       r['zero_grad'], 'yes' if r['params_finite'] else 'NO',
                       ' '.join(f'{v:.4g}' for v in r['losses']),
                       'ok' if r['passed'] else 'FAIL']
                      for r in results['train']]
        text += ['', markdown_table(
            ['Train precision', 'Input', 'Steps', 'Skipped (scaler)',
             'Params with grad', 'Non-finite grads', 'Zero grads',
             'Weights finite', 'Losses', 'Result'], train_rows),
            '', 'Gradient counts: last step the scaler took. Zero grads can '
            'be drop path dropping a branch for the whole batch.']
    text += ['', 'ALL PASSED' if results['passed'] else 'SOME CHECKS FAILED']
    return '\n'.join(text)


def load_backbone_cfg(path: str, override: Optional[Dict] = None) -> Dict:
    """``model.backbone`` of a config, as a plain dict, with overrides.

    Only the config file is read: no library is imported (see the module
    docstring).

    Args:
        path (str): The config (relative paths may be relative to the
            repository root).
        override (dict, optional): Backbone arguments to override.

    Returns:
        dict: The STViTRSwin arguments.

    Raises:
        ConfigError: The config is missing or unreadable, or its backbone
            is not an STViTRSwin.
    """
    resolved = find_resource(path)
    try:
        cfg = Config.fromfile(resolved).model.backbone.to_dict()
    except Exception as e:  # syntax errors, no model.backbone, ...
        raise ConfigError(f'cannot read model.backbone of {path}: {e}') \
            from e
    if cfg.get('type') != 'STViTRSwin':
        raise ConfigError(f'{resolved}: model.backbone is '
                          f'{cfg.get("type")!r}, not STViTRSwin')
    cfg.update(override or {})
    return cfg


def check_config(config: str, override: str = '{}',
                 threads: Optional[int] = None, out: Optional[str] = None,
                 **check_args) -> Dict:
    """All checks of a config's backbone, reported on stdout.

    What ``tools/analysis/device_check.py`` does: it prints
    :func:`markdown_report` and writes the results as JSON to ``out``.

    Args:
        config (str): The config whose ``model.backbone`` is checked.
        override (str): JSON of backbone arguments to override, e.g.
            ``'{"embed_dims": 16}'``.
        threads (int, optional): CPU threads of the reference; torch's
            default when None.
        out (str, optional): Also write the results as JSON here.
        **check_args: The other arguments of :func:`run_device_check`
            (``device`` among them).

    Returns:
        dict: The results of :func:`run_device_check`, ``setting.config``
        added.

    Raises:
        ConfigError: The config or the override cannot be used.
    """
    import stvit_mm  # noqa: F401  (registers STViTRSwin)
    if threads:
        torch.set_num_threads(threads)
    try:
        override = json.loads(override)
    except ValueError as e:
        raise ConfigError(f'--override is not JSON: {e}') from e
    results = run_device_check(load_backbone_cfg(config, override),
                               **check_args)
    results['setting']['config'] = config
    print(markdown_report(results), flush=True)
    if out:
        with open(out, 'w') as f:
            json.dump(results, f, indent=1)
    return results
