"""Convert released STViT-R-Swin checkpoints to stvit_mm / mmdet 3.x layout.

Handles both releases:

- ImageNet (``{'model': ...}``, e.g. ``STViT-R-Swin-S.pth``): the backbone is
  renamed; the classifier (``head.*``) and the final ``norm.*`` are dropped
  and reported. Output: a backbone-only ``{'state_dict': ...}`` that loads
  with ``init_cfg=dict(type='Pretrained', checkpoint=DST)``.
- COCO Cascade Mask R-CNN (mmdet 2.x ``{'state_dict': ...}``): ``backbone.*``
  is renamed, the neck and heads keep their names (mmdet 3.x uses the same
  module names for FPN, RPNHead, Shared4Conv1FCBBoxHead and FCNMaskHead).
  With ``--config`` every key and shape is checked against the mmdet 3.x
  model that config builds. Output: ``{'state_dict': ..., 'meta': ...}`` for
  ``tools/test.py``.

The source is read without executing anything in its pickle (released files
carry non-tensor objects such as training arguments); the destination is
written to a temporary file and renamed, so an interrupted run never leaves a
half-written checkpoint, and an existing DST is only replaced with
``--overwrite``.

Usage:
    python tools/model_converters/stvit_r_official_to_mm.py SRC DST \
        [--config configs/cascade_stvit_r_swin_s_3x.py] [--overwrite]
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from stvit_mm.models.backbones.official_keys import (  # noqa: E402
    convert_official_backbone, is_official_layout)
from stvit_mm.utils.checkpoint import load_untrusted_checkpoint  # noqa: E402

CLASSIFIER_PREFIXES = ('head.', 'norm.')


class ConversionError(RuntimeError):
    """The source does not look like a released STViT-R-Swin checkpoint."""


def split_release(ckpt):
    """Return (kind, backbone state dict, other detector weights, dropped).

    Args:
        ckpt (dict): The loaded release.

    Returns:
        tuple: ``'imagenet'`` or ``'detector'``, the official-layout backbone
        weights, the non-backbone detector weights (``{}`` for ImageNet) and
        the ImageNet classifier keys that were dropped.
    """
    if not isinstance(ckpt, dict):
        raise ConversionError(f'expected a dict checkpoint, got {type(ckpt)}')
    if 'state_dict' in ckpt and any(
            k.startswith('backbone.') for k in ckpt['state_dict']):
        sd = ckpt['state_dict']
        backbone = {k[len('backbone.'):]: v for k, v in sd.items()
                    if k.startswith('backbone.')}
        rest = {k: v for k, v in sd.items() if not k.startswith('backbone.')}
        return 'detector', backbone, rest, []
    sd = ckpt.get('model', ckpt.get('state_dict', ckpt))
    if not isinstance(sd, dict) or not all(
            isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(
            'found no tensor state dict under "model", "state_dict" or at '
            'the top level')
    dropped = sorted(k for k in sd if k.startswith(CLASSIFIER_PREFIXES))
    backbone = {k: v for k, v in sd.items()
                if not k.startswith(CLASSIFIER_PREFIXES)}
    return 'imagenet', backbone, {}, dropped


def check_against_config(state_dict, config):
    """Compare converted detector weights with the model ``config`` builds.

    Returns:
        tuple[list[str], list[str], list[str]]: Missing, unexpected and
        mis-shaped keys.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import stvit_mm  # noqa: F401  (registers STViTRSwin)
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # Only names and shapes are compared: build without allocating weights.
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mis_shaped = sorted(
        f'{k}: {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}'
        for k in set(own) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(own[k].shape))
    return missing, unexpected, mis_shaped


def convert(src, dst, config=None, overwrite=False, log=print):
    """Convert ``src`` to ``dst``; see the module docstring.

    Returns:
        dict: The saved checkpoint.
    """
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(
            f'{dst} exists; pass --overwrite to replace it, or choose '
            'another destination')
    ckpt = load_untrusted_checkpoint(src)
    kind, backbone, rest, dropped = split_release(ckpt)
    if not backbone or not is_official_layout(backbone):
        raise ConversionError(
            f'{src} holds no released STViT-R-Swin backbone (expected keys '
            'like patch_embed.proj.0.c.weight and layers.0.blocks.0.*)')
    converted, unknown = convert_official_backbone(backbone)
    if unknown:
        raise ConversionError(
            f'{src}: {len(unknown)} backbone keys match no part of '
            f'STViT-R-Swin: {unknown[:20]}')
    if dropped:
        log(f'dropped the ImageNet classifier: {dropped}')
    if kind == 'detector':
        state_dict = {f'backbone.{k}': v for k, v in converted.items()}
        state_dict.update(rest)
    else:
        state_dict = converted
    if config is not None:
        missing, unexpected, mis_shaped = check_against_config(
            state_dict if kind == 'detector' else
            {f'backbone.{k}': v for k, v in state_dict.items()}, config)
        if kind == 'imagenet':
            missing = [k for k in missing if k.startswith('backbone.')]
        if missing or unexpected or mis_shaped:
            raise ConversionError(
                f'converted weights do not fit {config}:\n  missing: '
                f'{missing[:30]}\n  unexpected: {unexpected[:30]}\n  '
                f'mis-shaped: {mis_shaped[:30]}')
        log(f'checked against {config}: every key and shape matches')
    out = {
        'state_dict': state_dict,
        'meta': dict(converted_from=osp.basename(src), release=kind),
    }
    _atomic_save(out, dst)
    log(f'{kind} release: wrote {len(state_dict)} tensors to {dst}')
    return out


def _atomic_save(obj, dst):
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.part')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted weights')
    parser.add_argument('--config', help='check the result against the model '
                        'this config builds (e.g. '
                        'configs/cascade_stvit_r_swin_s_3x.py)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing DST')
    args = parser.parse_args(argv)
    try:
        convert(args.src, args.dst, args.config, args.overwrite)
    except (ConversionError, FileExistsError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    except RuntimeError as e:  # CheckpointError and torch load failures
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
