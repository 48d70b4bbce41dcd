"""Convert a released STViT-R-Swin checkpoint into this package's layout.

* ImageNet release (``STViT-R-Swin-S.pth``): writes ``{'state_dict':
  backbone, 'meta'}`` for ``init_cfg=dict(type='Pretrained', ...)``. The
  classifier and derived buffers are dropped; the output norms the release
  lacks are initialised by the backbone when it loads the file.
* ImageNet release with ``classifier=True``: writes the whole classifier as
  an mmpretrain ``ImageClassifier`` checkpoint (``configs/imagenet/``),
  final norm and head included, for ``tools/test.py`` (top-1).
* COCO release (mmdet 2.11 Cascade Mask R-CNN): writes the whole detector
  (``backbone.`` renamed; neck and heads keep their names, which mmdet 3.3
  shares with 2.11) for ``tools/test.py``.

With a config, every key and shape is checked against the model it builds.
The source is read without running anything in its pickle; the destination
is written atomically and an existing file is only replaced when asked.
"""
import io
import os.path as osp
from typing import Callable, Dict, Optional

import torch

from ..engine.fileio import atomic_write
from ..models.backbones.release_weights import (DROPPED_CLASSIFIER,
                                                ReleaseWeights,
                                                classifier_state_dict,
                                                read_release)
from ..utils.checkpoint import CheckpointError, load_untrusted_checkpoint
from ..utils.state_dict_diff import diff_state_dicts, short_list

__all__ = ['ConversionError', 'convert_release']


class ConversionError(CheckpointError):
    """The source is not a released STViT-R-Swin checkpoint, or does not fit
    the config it is checked against."""


def _build_on_meta(config: str) -> torch.nn.Module:
    """The model ``config`` builds, without allocating weights (only names
    and shapes are compared)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    cfg = Config.fromfile(config)
    if cfg.get('default_scope') == 'mmpretrain':
        import mmpretrain.models  # noqa: F401 (registers ImageClassifier)
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _check_against(weights: ReleaseWeights, state_dict: Dict, config: str,
                   src: str) -> None:
    own = _build_on_meta(config).state_dict()
    if weights.kind == 'imagenet' and not any(k.startswith('head.')
                                              for k in state_dict):
        # Pretraining initialises the backbone only.
        own = {k: v for k, v in own.items() if k.startswith('backbone.')}
    fresh = [f'backbone.{k}' for k in weights.output_norms_to_initialise(
        [k[len('backbone.'):] for k in own])]
    diff = diff_state_dicts(own, state_dict, may_be_missing=fresh)
    if diff:
        raise ConversionError(diff.message(
            f'{src}, converted,', f'model of {config}',
            'Check that the config (S vs B, task) matches the release.'))


def convert_release(src: str, dst: str, config: Optional[str] = None,
                    overwrite: bool = False,
                    log: Callable[[str], None] = print,
                    classifier: bool = False) -> Dict:
    """Convert ``src`` (a released checkpoint) to ``dst``.

    Args:
        src (str): The released ``.pth``.
        dst (str): Where to write the converted checkpoint.
        config (str, optional): Check every key and shape against the model
            this config builds.
        overwrite (bool): Replace an existing ``dst``.
        log (Callable[[str], None]): Where the report goes.
        classifier (bool): Keep an ImageNet release whole, as an mmpretrain
            classifier (``configs/imagenet/``), instead of its backbone.

    Returns:
        dict: The saved checkpoint.

    Raises:
        FileExistsError: ``dst`` exists and ``overwrite`` is False.
        ConversionError: ``src`` holds no released backbone, holds unknown
            backbone weights, or does not fit ``config``.
        CheckpointError: ``src`` is missing, damaged or would run code.
    """
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'{dst} exists; pass --overwrite to replace it, or choose '
            'another destination')
    try:
        weights = read_release(load_untrusted_checkpoint(src))
    except ValueError as e:
        raise ConversionError(f'{src}: {e}') from None
    if not weights.backbone or not weights.translated:
        raise ConversionError(
            f'{src} holds no released STViT-R-Swin backbone (expected keys '
            'like patch_embed.proj.0.c.weight and layers.0.blocks.0.*)')
    if weights.unknown:
        raise ConversionError(
            f'{src}: {len(weights.unknown)} backbone keys match no part of '
            f'STViT-R-Swin: {short_list(weights.unknown, 20)}')
    if classifier:
        if weights.kind != 'imagenet':
            raise ConversionError(
                f'{src} is a {weights.kind} checkpoint; --classifier needs '
                'the ImageNet release (STViT-R-Swin-S.pth / -B.pth)')
        try:
            state_dict = classifier_state_dict(weights)
        except ValueError as e:
            raise ConversionError(f'{src}: {e}') from None
        weights.dropped.pop(DROPPED_CLASSIFIER, None)
        log('kept the classifier: norm.* -> backbone.norm3.*, head.* -> '
            'head.fc.*')
    elif weights.kind == 'detector':
        state_dict = {f'backbone.{k}': v for k, v in weights.backbone.items()}
        state_dict.update(weights.others)
    else:
        state_dict = dict(weights.backbone)
    for why, keys in weights.dropped.items():
        log(f'dropped {len(keys)} {why}: {short_list(keys, 20)}')
    if weights.lacks_output_norms and not classifier:
        log('an ImageNet classifier has no per-stage output norms: '
            'STViTRSwin initialises norm0..norm3 to weight 1, bias 0 when it '
            'loads this file, as the released detectors did')
    if config is not None:
        _check_against(weights, state_dict
                       if weights.kind == 'detector' or classifier else
                       {f'backbone.{k}': v for k, v in state_dict.items()},
                       config, src)
        log(f'checked against {config}: every key and shape matches')
    out = {
        'state_dict': state_dict,
        'meta': dict(converted_from=osp.basename(src),
                     release='classifier' if classifier else weights.kind,
                     dropped=weights.dropped),
    }
    buffer = io.BytesIO()
    torch.save(out, buffer)
    atomic_write(buffer.getvalue(), dst)
    log(f'{weights.kind} release: wrote {len(state_dict)} tensors to {dst}')
    return out
