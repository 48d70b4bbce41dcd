"""The released STViT-R-Swin checkpoints, read as they really are.

Two kinds of file were released (Hugging Face ``csncsn/STViT-R``):

* ImageNet classifiers (``STViT-R-Swin-S.pth``, ``-B.pth``), saved by the
  classification training script as ``{'model', 'optimizer',
  'lr_scheduler', 'max_accuracy', 'epoch', 'config', 'amp'}``. ``model``
  holds the detection backbone's parameters under the same names, plus the
  classifier (``head.*``, final ``norm.*``), derived buffers
  (``relative_position_index``, the shifted-window ``attn_mask`` of stages 1
  and 2 at 224 px) and BatchNorm statistics, but NO per-stage output norms
  ``norm0..norm3``: the release's detectors loaded it with ``strict=False``
  and started those at weight 1, bias 0.
* COCO Cascade Mask R-CNN detectors, mmdet 2.11 checkpoints:
  ``{'meta', 'state_dict', 'optimizer'}`` with ``backbone.``, ``neck.``,
  ``rpn_head.`` and ``roi_head.`` keys. mmdet 3.3 names the neck and head
  modules the same way (checked module by module against mmdet 2.11's
  source, see ``tests/test_models/test_release_weights.py``).

The released backbone layout is ``patch_embed.proj.{0,2}.{c,bn}``,
``layers.{i}.blocks.{j}``, ``layers.{i}.downsample`` and ``norm{i}``; stage
3's blocks are numbered 0..depth-1, six per dumbbell unit.
:func:`read_release` turns any of these (or an already converted file) into
this package's names and says what it left out and why; the backbone's
``Pretrained`` init and the converter both use it.

A classifier trained here (an mmpretrain ``ImageClassifier``: ``backbone.*``
with the final norm as the backbone's one output norm, ``head.fc.*``) is
read as the ImageNet release is, so it initialises a detector the same way;
:func:`classifier_state_dict` writes the release in that layout.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping

from torch import Tensor

from ..layers.dumbbell import UNIT_BLOCK_NAMES

SPARSIFIED_STAGE = 2
NUM_STAGES = 4
#: Buffers the model rebuilds from its configuration and the input size.
DERIVED_SUFFIXES = ('relative_position_index', 'attn_mask')
#: The ImageNet classifier: not part of a backbone.
CLASSIFIER_PREFIXES = ('head.', 'norm.')
#: Per-stage output norms, which an ImageNet classifier does not have.
OUTPUT_NORM_PREFIXES = tuple(f'norm{i}.' for i in range(NUM_STAGES))
#: The linear head of an mmpretrain classifier (``LinearClsHead``).
MM_HEAD_PREFIX = 'head.fc.'

DROPPED_DERIVED = 'derived buffers (rebuilt by the model)'
DROPPED_CLASSIFIER = 'ImageNet classifier (head.*, norm.*)'

_BLOCK_PARTS = (
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('layer_scale_1', 'gamma1.weight'),
    ('layer_scale_2', 'ffn.gamma2.weight'),
)


@dataclass
class ReleaseWeights:
    """A checkpoint's weights in this package's names.

    Attributes:
        kind (str): ``'imagenet'`` (classifier pretraining, also once
            converted), ``'detector'`` (a whole detector or segmentor,
            ``backbone.``-prefixed) or ``'backbone'`` (a bare backbone).
        backbone (dict[str, Tensor]): Backbone weights, no prefix.
        others (dict[str, Tensor]): A detector's other weights (neck,
            heads), names unchanged; empty otherwise.
        dropped (dict[str, list[str]]): Released keys left out, by reason.
        unknown (list[str]): Released backbone keys that match no part of
            STViT-R-Swin (the caller refuses or reports them).
        translated (bool): Whether the backbone came in the released names.
        classifier (dict[str, Tensor]): An ImageNet classifier's final norm
            and head in the released names (``norm.*``, ``head.*``).
    """
    kind: str
    backbone: Dict[str, Tensor]
    others: Dict[str, Tensor] = field(default_factory=dict)
    dropped: Dict[str, List[str]] = field(default_factory=dict)
    unknown: List[str] = field(default_factory=list)
    translated: bool = False
    classifier: Dict[str, Tensor] = field(default_factory=dict)

    @property
    def lacks_output_norms(self) -> bool:
        """ImageNet pretraining without any per-stage output norm, which the
        backbone then initialises (a checkpoint with some of them must have
        all; a detector's backbone always does)."""
        return self.kind == 'imagenet' and not any(
            k.startswith(OUTPUT_NORM_PREFIXES) for k in self.backbone)

    def output_norms_to_initialise(self, model_keys) -> List[str]:
        """The model's output-norm keys that :attr:`lacks_output_norms`
        leaves to be initialised."""
        if not self.lacks_output_norms:
            return []
        return sorted(k for k in model_keys
                      if k.startswith(OUTPUT_NORM_PREFIXES))


def is_release_layout(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether a (prefix-free) backbone state dict uses the released names."""
    return any(k.startswith(('patch_embed.proj.', 'layers.'))
               for k in state_dict)


def _block_key(rest: str) -> str:
    for old, new in _BLOCK_PARTS:
        if rest.startswith(old):
            return new + rest[len(old):]
    return rest


def release_key_to_mm(key: str) -> str:
    """Translate one released backbone key; ``''`` for a derived buffer.

    Raises:
        KeyError: If the key belongs to no known part of the backbone.
    """
    if key.endswith(DERIVED_SUFFIXES):
        return ''
    m = re.fullmatch(r'patch_embed\.proj\.([02])\.(c|bn)\.(.+)', key)
    if m:
        conv = int(m.group(1)) // 2
        part = 'conv' if m.group(2) == 'c' else 'bn'
        return f'patch_embed.convs.{conv}.{part}.{m.group(3)}'
    m = re.fullmatch(r'layers\.(\d+)\.downsample\.(.+)', key)
    if m:
        return f'downsamples.{m.group(1)}.{m.group(2)}'
    m = re.fullmatch(r'layers\.(\d+)\.blocks\.(\d+)\.(.+)', key)
    if m:
        stage, block, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        if stage == SPARSIFIED_STAGE:
            unit, pos = divmod(block, len(UNIT_BLOCK_NAMES))
            return (f'stages.{stage}.units.{unit}.{UNIT_BLOCK_NAMES[pos]}.'
                    f'{_block_key(rest)}')
        return f'stages.{stage}.blocks.{block}.{_block_key(rest)}'
    if re.fullmatch(r'norm\d\.(weight|bias)', key):
        return key
    raise KeyError(key)


def translate_backbone(state_dict: Mapping[str, Tensor]) -> ReleaseWeights:
    """Rename released backbone weights (no prefix) to this package's names.

    Returns:
        ReleaseWeights: ``kind='backbone'``; derived buffers in ``dropped``,
        keys of no known part in ``unknown``.
    """
    weights = ReleaseWeights('backbone', {}, translated=True)
    derived = []
    for key, value in state_dict.items():
        try:
            new_key = release_key_to_mm(key)
        except KeyError:
            weights.unknown.append(key)
            continue
        if new_key:
            weights.backbone[new_key] = value
        else:
            derived.append(key)
    if derived:
        weights.dropped[DROPPED_DERIVED] = sorted(derived)
    return weights


def _strip(prefix: str, state_dict: Mapping) -> Dict:
    return {k[len(prefix):] if k.startswith(prefix) else k: v
            for k, v in state_dict.items()}


def _mm_classifier(state_dict: Mapping[str, Tensor]):
    """Backbone and released-name classifier of an mmpretrain classifier's
    state dict (``backbone.*``, ``head.fc.*`` and nothing else), or None.

    Its backbone's one output norm is the classifier's final norm.

    Raises:
        ValueError: If it has several output norms (which is the final one
            is then unknown).
    """
    rest = [k for k in state_dict if not k.startswith('backbone.')]
    if not rest or not all(k.startswith(MM_HEAD_PREFIX) for k in rest):
        return None
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    norms = {k for k in backbone if k.startswith(OUTPUT_NORM_PREFIXES)}
    if len({k.split('.')[0] for k in norms}) != 1:
        raise ValueError(
            'an mmpretrain classifier whose backbone has '
            f'{len({k.split(".")[0] for k in norms})} output norms; '
            'expected exactly one (out_indices=(3,)), its final norm')
    classifier = {'norm.' + k.split('.', 1)[1]: backbone.pop(k)
                  for k in sorted(norms)}
    classifier.update({'head.' + k[len(MM_HEAD_PREFIX):]: state_dict[k]
                       for k in rest})
    return backbone, classifier


def classifier_state_dict(weights: ReleaseWeights,
                          final_norm: int = NUM_STAGES - 1) -> Dict:
    """An ImageNet classifier's weights as an mmpretrain ``ImageClassifier``
    with an STViTRSwin backbone (``out_indices=(final_norm,)``) and a
    ``LinearClsHead``: the final ``norm`` becomes ``backbone.norm{i}``,
    ``head`` becomes ``head.fc``; nothing is lost.

    Raises:
        ValueError: If ``weights`` holds no classifier.
    """
    if sorted(weights.classifier) != ['head.bias', 'head.weight',
                                      'norm.bias', 'norm.weight']:
        raise ValueError(
            'holds no ImageNet classifier (norm.weight, norm.bias, '
            f'head.weight, head.bias); found {sorted(weights.classifier)}')
    out = {f'backbone.{k}': v for k, v in weights.backbone.items()}
    for key, value in weights.classifier.items():
        part, name = key.split('.')
        out[f'backbone.norm{final_norm}.{name}' if part == 'norm' else
            f'{MM_HEAD_PREFIX}{name}'] = value
    return out


def read_release(checkpoint: Mapping) -> ReleaseWeights:
    """Take the weights out of a loaded checkpoint, whatever its layout.

    Accepts the ImageNet release (``{'model': ...}``), the mmdet 2.x COCO
    release and mmdet/mmseg 3.x checkpoints (``{'state_dict': ...}`` with
    ``backbone.`` keys), files written by the converter, and bare backbone
    state dicts; ``module.`` prefixes are stripped.

    Args:
        checkpoint (Mapping): The loaded checkpoint.

    Returns:
        ReleaseWeights: In this package's names.

    Raises:
        ValueError: If it holds no dict of tensors.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f'expected a checkpoint dict, got {type(checkpoint).__name__}')
    meta = checkpoint.get('meta')
    converted_kind = meta.get('release') if isinstance(meta, Mapping) else None
    state_dict = checkpoint.get('state_dict', checkpoint.get('model',
                                                             checkpoint))
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise ValueError('found no dict of tensors under "state_dict", '
                         '"model" or at the top level')
    state_dict = _strip('module.', state_dict)

    mm_classifier = _mm_classifier(state_dict)
    if mm_classifier is not None:
        kind = 'imagenet'
        (backbone, classifier_weights), others = mm_classifier, {}
    elif any(k.startswith('backbone.') for k in state_dict):
        kind = 'detector'
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
        others = {k: v for k, v in state_dict.items()
                  if not k.startswith('backbone.')}
        classifier_weights = {}
    else:
        kind = ('imagenet' if 'model' in checkpoint or converted_kind
                == 'imagenet' or any(k.startswith(CLASSIFIER_PREFIXES)
                                     for k in state_dict) else 'backbone')
        classifier_weights = {k: v for k, v in state_dict.items()
                              if k.startswith(CLASSIFIER_PREFIXES)}
        backbone = {k: v for k, v in state_dict.items()
                    if not k.startswith(CLASSIFIER_PREFIXES)}
        others = {}

    if is_release_layout(backbone):
        weights = translate_backbone(backbone)
    else:
        weights = ReleaseWeights('backbone', backbone)
    weights.kind, weights.others = kind, others
    weights.classifier = classifier_weights
    if classifier_weights:
        weights.dropped[DROPPED_CLASSIFIER] = sorted(classifier_weights)
    return weights
