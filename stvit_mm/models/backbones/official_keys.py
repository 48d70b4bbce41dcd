"""Mapping of the released STViT-R-Swin state-dict layout to this package's.

The released layout (``changsn/STViT-R-Object-Detection``) is
``patch_embed.proj.{0,2}.{c,bn}``, ``layers.{i}.blocks.{j}``,
``layers.{i}.downsample`` and ``norm{i}``; stage 3's blocks are numbered
0..depth-1, six per dumbbell unit. Derived buffers
(``relative_position_index``) are dropped: they are rebuilt from the window
size.
"""
import re
from typing import Dict, List, Tuple

from torch import Tensor

SPARSIFIED_STAGE = 2
UNIT_BLOCKS = ('swin_block', 'generate.0', 'generate.1', 'local_block',
               'global_block', 'recovery_block')
DERIVED_SUFFIXES = ('relative_position_index', )

_BLOCK_PARTS = (
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('layer_scale_1', 'gamma1.weight'),
    ('layer_scale_2', 'ffn.gamma2.weight'),
)


def is_official_layout(state_dict: Dict[str, Tensor]) -> bool:
    """Whether a (prefix-free) backbone state dict uses the released names."""
    return any(k.startswith(('patch_embed.proj.', 'layers.'))
               for k in state_dict)


def _block_key(rest: str) -> str:
    for old, new in _BLOCK_PARTS:
        if rest.startswith(old):
            return new + rest[len(old):]
    return rest


def official_key_to_mm(key: str) -> str:
    """Translate one released backbone key; returns '' for derived buffers.

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
            unit, pos = divmod(block, len(UNIT_BLOCKS))
            return (f'stages.{stage}.units.{unit}.{UNIT_BLOCKS[pos]}.'
                    f'{_block_key(rest)}')
        return f'stages.{stage}.blocks.{block}.{_block_key(rest)}'
    if re.fullmatch(r'norm\d\.(weight|bias)', key):
        return key
    raise KeyError(key)


def convert_official_backbone(
        state_dict: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename a released backbone state dict (no ``backbone.`` prefix) to
    this package's layout.

    Args:
        state_dict (dict[str, Tensor]): Released backbone weights.

    Returns:
        tuple[dict[str, Tensor], list[str]]: The converted weights, and the
        keys that belong to no part of the backbone (left out, for the caller
        to report).
    """
    converted, unknown = {}, []
    for key, value in state_dict.items():
        try:
            new_key = official_key_to_mm(key)
        except KeyError:
            unknown.append(key)
            continue
        if new_key:
            converted[new_key] = value
    return converted, unknown
