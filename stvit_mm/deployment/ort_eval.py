"""Evaluating an exported segmentor in ONNX Runtime on the config's
validation set, beside the PyTorch model it came from.

The graph of :class:`~.wrappers.SegmentorGraph` (``seg_output='logits'``)
computes what mmseg's ``encode_decode`` does in whole-image mode; the rest of
the test step, resizing the logits back to the original image and taking
the arg max, is mmseg's own ``postprocess_result``, as is the evaluator.
"""
import copy
from typing import Dict, Optional

import torch

from ..errors import ConfigError
from .ort_runtime import OrtModel

__all__ = ['evaluate_segmentor_onnx']


def _val_loader_and_evaluators(cfg, count: int):
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        loader = Runner.build_dataloader(cfg.val_dataloader)
        evaluators = [Evaluator(copy.deepcopy(cfg.val_evaluator))
                      for _ in range(count)]
    for evaluator in evaluators:
        evaluator.dataset_meta = loader.dataset.metainfo
    return loader, evaluators


def evaluate_segmentor_onnx(config: str,
                            onnx_path: str,
                            checkpoint: Optional[str] = None,
                            threads: Optional[int] = None,
                            cfg_options: Optional[dict] = None) -> Dict:
    """The mIoU (and the evaluator's other metrics) of an exported
    segmentor on the config's validation set, run in ONNX Runtime; with the
    checkpoint it was exported from, also PyTorch's metrics and the share of
    pixels where both predict the same label.

    Args:
        config (str): The mmseg config (its ``val_dataloader`` and
            ``val_evaluator`` are used, ``model.test_cfg.mode`` 'whole').
        onnx_path (str): The graph, exported with ``--seg-output logits``.
        checkpoint (str, optional): The weights the graph was exported from.
        threads (int, optional): ONNX Runtime threads.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        dict: ``onnx`` metrics; with a checkpoint also ``pytorch`` metrics,
        ``same_label`` (fraction of pixels) and ``pixels``.

    Raises:
        ConfigError: Not an mmseg config, or sliding-window testing.
        InputError: The ONNX file cannot be loaded.
        CheckpointError: The checkpoint does not fit the config.
    """
    from ..analysis.models import build_model
    from ..apis.config import load_config
    from ..apis.inference import load_weights
    from ..apis.preflight import check_data, report_problems
    cfg = load_config(config, cfg_options)
    if cfg.default_scope != 'mmseg':
        raise ConfigError(f'{config}: evaluating an exported model needs an '
                          'mmseg (segmentation) config')
    if cfg.model.get('test_cfg', {}).get('mode', 'whole') != 'whole':
        raise ConfigError(
            f'{config}: model.test_cfg.mode is '
            f'{cfg.model.test_cfg.mode!r}; the exported graph runs whole '
            "images: set --cfg-options model.test_cfg.mode=whole")
    report_problems(lambda: check_data(cfg, 'mmseg', ['val']))
    session = OrtModel(onnx_path, threads)
    if session.output_names[0] != 'logits':
        raise ConfigError(f'{onnx_path} outputs {session.output_names}; '
                          'evaluation needs a segmentor exported with '
                          '--seg-output logits')
    model = build_model(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint, cfg)
    loader, evaluators = _val_loader_and_evaluators(
        cfg, 2 if checkpoint else 1)
    same = pixels = 0
    for data in loader:
        images = torch.stack(data['inputs']).float()
        logits = torch.from_numpy(session(images)[0])
        onnx_samples = model.postprocess_result(
            logits, copy.deepcopy(data['data_samples']))
        evaluators[0].process(onnx_samples, data)
        if checkpoint is None:
            continue
        with torch.no_grad():
            torch_samples = model.test_step(copy.deepcopy(data))
        evaluators[1].process(torch_samples, data)
        for a, b in zip(onnx_samples, torch_samples):
            same += int((a.pred_sem_seg.data == b.pred_sem_seg.data).sum())
            pixels += b.pred_sem_seg.data.numel()
    size = len(loader.dataset)
    result = dict(onnx=_plain(evaluators[0].evaluate(size)))
    if checkpoint is not None:
        result.update(pytorch=_plain(evaluators[1].evaluate(size)),
                      same_label=same / max(pixels, 1), pixels=pixels)
    return result


def _plain(metrics: Dict) -> Dict[str, float]:
    """The evaluator's numpy scalars as floats (JSON-serialisable)."""
    return {name: float(value) for name, value in metrics.items()}
