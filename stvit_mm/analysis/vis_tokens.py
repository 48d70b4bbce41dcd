"""``tools/analysis/vis_semantic_tokens.py``: one figure of where the
semantic tokens of an STViT-R-Swin model look, for any detection,
segmentation or classification config (:func:`vis_semantic_tokens`).

The image goes through the config's test pipeline and the model's data
preprocessor, so the figure shows the input exactly as the backbone sees
it; only the backbone runs. Every refusal (an existing ``--out``, a config
without STViT-R-Swin, an unreadable image, a checkpoint that does not fit,
a unit or window that does not exist) happens before anything is written.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config

from ..engine.fileio import atomic_write
from ..errors import ConfigError
from ..models.backbones.release_weights import SPARSIFIED_STAGE
from ..utils import CheckpointError
from .models import build_model
from .token_figure import (default_queries, default_windows,
                           draw_token_figure)
from .token_maps import find_stvit_backbone, record_unit

__all__ = ['vis_semantic_tokens', 'uses_stvit', 'model_input']


def uses_stvit(node) -> bool:
    """Whether a config (part) builds ``STViTRSwin`` anywhere."""
    if isinstance(node, dict):
        kind = node.get('type')
        name = kind if isinstance(kind, str) else getattr(kind, '__name__',
                                                          '')
        return name.split('.')[-1] == 'STViTRSwin' or any(
            uses_stvit(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(uses_stvit(v) for v in node)
    return False


def model_input(cfg: Config, model: torch.nn.Module,
                image: str) -> Tuple[torch.Tensor, np.ndarray]:
    """The image through the config's test pipeline (annotation loading
    left out) and the model's data preprocessor.

    Returns:
        tuple: The backbone's input (1, 3, H, W) and the same image as RGB
        uint8 (H, W, 3), normalisation undone (padding shows the mean).
    """
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if 'LoadAnnotations' not in str(t.get('type', ''))]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        data = Compose(steps)(dict(img_path=image, img_id=0))
        with torch.no_grad():
            batch = model.data_preprocessor(pseudo_collate([data]), False)
    inputs = batch['inputs']
    pre = model.data_preprocessor
    shown = inputs[0].float()
    if getattr(pre, '_enable_normalize', False):
        shown = shown * pre.std + pre.mean
    rgb = shown.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
    return inputs, rgb


def _check_windows(windows, record) -> List[Tuple[int, int]]:
    nWh, nWw = record.geometry.num_windows
    for r, c in windows:
        if not (0 <= r < nWh and 0 <= c < nWw):
            raise ConfigError(
                f'--windows {r},{c}: the stage-3 map of this input has '
                f'{nWh}x{nWw} windows (rows 0..{nWh - 1}, columns '
                f'0..{nWw - 1})')
    return [tuple(win) for win in windows]


def vis_semantic_tokens(config: str, checkpoint: Optional[str], image: str,
                        out: str, unit: int = 0,
                        windows: Optional[Sequence[Tuple[int, int]]] = None,
                        force: bool = False,
                        cfg_options: Optional[dict] = None) -> str:
    """Draw the semantic-token figure of one image into ``out`` (PNG).

    Args:
        config (str): Any config whose model has an STViT-R-Swin backbone.
        checkpoint (str, optional): Weights that fit the config's model;
            None draws a randomly initialised model.
        image (str): The image file.
        out (str): The PNG to write.
        unit (int): Dumbbell unit of stage 3 (0-based).
        windows (list[tuple[int, int]], optional): Stage-3 windows
            (row, col) to detail; by default the centre window and the
            most textured other one.
        force (bool): Replace an existing ``out``.
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        str: One line saying what was drawn and where.

    Raises:
        StvitMMError: Each refusal, before anything is written.
    """
    from ..apis import load_config
    from ..apis.inference import load_fitting_weights, read_image
    from ..deployment.model_export import check_out_path
    check_out_path(out, force)
    cfg = load_config(config, cfg_options)
    if not uses_stvit(cfg.get('model')):
        raise ConfigError(
            f'{config}: its model has no STViTRSwin backbone; this tool draws '
            "STViT-R-Swin's semantic tokens (see configs/examples/, "
            'configs/quickstart/, configs/imagenet/)')
    read_image(image)  # a clear error for anything that is not an image
    model = build_model(cfg)
    backbone = find_stvit_backbone(model)
    if checkpoint:
        try:
            load_fitting_weights(model, checkpoint)
        except CheckpointError as e:  # its key lists, on one line
            raise type(e)(' '.join(line.strip() for line in
                                   str(e).splitlines())) from None
        weights = osp.basename(checkpoint)
    else:
        backbone.init_weights()  # as training from scratch starts
        weights = 'random weights'
    units = len(backbone.stages[SPARSIFIED_STAGE].units)
    if not 0 <= unit < units:
        raise ConfigError(f'--unit {unit}: stage 3 of this model has {units}'
                          f' dumbbell unit(s); choose 0..{units - 1}')
    with record_unit(backbone, unit) as record, torch.no_grad():
        inputs, rgb = model_input(cfg, model, image)
        backbone(inputs)
    windows = _check_windows(windows, record) if windows else \
        default_windows(record, rgb)
    queries = default_queries(record, windows)
    title = (f'STViT-R-Swin semantic tokens: {osp.basename(config)}, '
             f'{weights}, stage 3 unit {unit} of '
             f'{units}, {osp.basename(image)}')
    png = draw_token_figure(record, rgb, windows, queries, title)
    check_out_path(out, force)  # nothing appeared there meanwhile
    atomic_write(png, out)
    return (f'semantic tokens of unit {unit}, windows '
            f'{", ".join(f"{r},{c}" for r, c in windows)} -> {out}')
