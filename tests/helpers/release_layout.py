"""Files in the layouts of the released STViT-R checkpoints, built for tests.

The released files cannot be downloaded here, so tests write files of the
same layout from a model's weights: the ImageNet release as the
classification training script saves it, and the COCO release as mmdet 2.11
saves a detector. ``test_release_weights.py`` checks the generated ImageNet
layout key for key and shape for shape against the real one (the golden
fixture's ``state_dict``, saved by the released classification code).
"""
import re
import sys
import types
from contextlib import contextmanager

import torch

UNIT_BLOCKS = ('swin_block', 'generate.0', 'generate.1', 'local_block',
               'global_block', 'recovery_block')
_BLOCK_PARTS = (('ffn.layers.0.0.', 'mlp.fc1.'), ('ffn.layers.1.', 'mlp.fc2.'),
                ('gamma1.weight', 'layer_scale_1'),
                ('ffn.gamma2.weight', 'layer_scale_2'))


def _block_key(rest):
    for ours, released in _BLOCK_PARTS:
        if rest.startswith(ours):
            return released + rest[len(ours):]
    return rest


def mm_key_to_release(key):
    """This package's backbone key -> the released name (independent of the
    package's own translation, so that the two check each other)."""
    m = re.fullmatch(r'patch_embed\.convs\.(\d)\.(conv|bn)\.(.+)', key)
    if m:
        part = 'c' if m[2] == 'conv' else 'bn'
        return f'patch_embed.proj.{2 * int(m[1])}.{part}.{m[3]}'
    m = re.fullmatch(r'downsamples\.(\d)\.(.+)', key)
    if m:
        return f'layers.{m[1]}.downsample.{m[2]}'
    m = re.fullmatch(r'stages\.2\.units\.(\d+)\.(\w+(?:\.\d)?)\.(.+)', key)
    if m:
        block = 6 * int(m[1]) + UNIT_BLOCKS.index(m[2])
        return f'layers.2.blocks.{block}.{_block_key(m[3])}'
    m = re.fullmatch(r'stages\.(\d)\.blocks\.(\d+)\.(.+)', key)
    if m:
        return f'layers.{m[1]}.blocks.{m[2]}.{_block_key(m[3])}'
    assert re.fullmatch(r'norm\d\.(weight|bias)', key), key
    return key


def _swin_blocks(state_dict):
    """Released names of the Swin blocks (they own a position table)."""
    return sorted({k[:-len('.attn.relative_position_bias_table')]
                   for k in state_dict
                   if k.endswith('.attn.relative_position_bias_table')})


def detection_backbone_release(mm_state_dict, window_size=7):
    """The released detection backbone's state dict: this package's weights
    renamed, plus each Swin block's ``relative_position_index`` buffer."""
    out = {mm_key_to_release(k): v for k, v in mm_state_dict.items()}
    index = torch.zeros(window_size**2, window_size**2, dtype=torch.long)
    for block in _swin_blocks(out):
        out.setdefault(f'{block}.attn.relative_position_index', index)
    return out


def imagenet_release_model(release_state_dict, num_classes=1000,
                           img_size=224, window_size=7):
    """``checkpoint['model']`` of the ImageNet release, made from a released
    detection backbone's state dict: without the output norms
    ``norm0..norm3``, plus the classifier (``norm``, ``head``) and the
    derived buffers (position indices; the shifted-window masks of stages 1
    and 2 at ``img_size``)."""
    out = {k: v for k, v in release_state_dict.items()
           if not re.match(r'norm\d\.', k)}
    index = torch.zeros(window_size**2, window_size**2, dtype=torch.long)
    for block in _swin_blocks(out):
        out.setdefault(f'{block}.attn.relative_position_index', index)
    width = out['layers.3.blocks.0.norm1.weight'].shape[0]
    gen = torch.Generator().manual_seed(0)
    out['norm.weight'] = 1 + 0.1 * torch.randn(width, generator=gen)
    out['norm.bias'] = 0.1 * torch.randn(width, generator=gen)
    out['head.weight'] = torch.randn(num_classes, width, generator=gen)
    out['head.bias'] = torch.randn(num_classes, generator=gen)
    for stage in (0, 1):
        side = img_size // 4 // 2**stage
        windows = (side // window_size)**2
        out[f'layers.{stage}.blocks.1.attn_mask'] = torch.zeros(
            windows, window_size**2, window_size**2)
    return out


@contextmanager
def _importable_yacs():
    """A ``yacs.config.CfgNode`` class for pickling, as the release's
    ``config`` entry names it (a foreign class the loader must not import)."""
    yacs, config = types.ModuleType('yacs'), types.ModuleType('yacs.config')

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
    config.CfgNode, yacs.config = CfgNode, config
    saved = {k: sys.modules.get(k) for k in ('yacs', 'yacs.config')}
    sys.modules.update({'yacs': yacs, 'yacs.config': config})
    try:
        yield CfgNode
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = v


def save_imagenet_release(path, model):
    """Write ``model`` (the ``'model'`` dict) as the classification training
    script saves a checkpoint (``utils.save_checkpoint``)."""
    first = next(iter(model.values()))
    with _importable_yacs() as CfgNode:
        config = CfgNode(MODEL=CfgNode(NAME='stvit_r_swin_small'))
        torch.save(
            {
                'model': model,
                'optimizer': {
                    'state': {0: {'step': torch.tensor(3.),
                                  'exp_avg': torch.zeros_like(first)}},
                    'param_groups': [{'lr': 1e-5, 'params': [0]}]
                },
                'lr_scheduler': {'t_initial': 300, 'warmup_t': 20},
                'max_accuracy': 82.65,
                'epoch': 299,
                'config': config,
                'amp': {'loss_scaler0': {'loss_scale': 65536.0}},
            }, path)


def save_detector_release(path, backbone, others, config_text=''):
    """Write an mmdet 2.11 checkpoint as the release's runner saves it
    (see ``mmdet211_cascade_keys``): ``meta`` with the config as a string,
    ``state_dict``, ``optimizer`` and apex's ``amp``."""
    state_dict = {f'backbone.{k}': v for k, v in backbone.items()}
    state_dict.update(others)
    torch.save(
        {
            'meta': {
                'mmdet_version': '2.11.0',
                'config': config_text,
                'CLASSES': tuple(f'class{i}' for i in range(80)),
                'env_info': 'sys.platform: linux',
                'seed': 0,
                'exp_name': 'cascade_mask_rcnn_swin_small.py',
                'epoch': 36,
                'iter': 263844,
                'mmcv_version': '1.3.1',
                'time': 'Sat May  7 10:12:00 2022',
                'hook_msgs': {'last_ckpt': 'work_dirs/epoch_36.pth'},
            },
            'state_dict': state_dict,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-6}]},
            'amp': {'loss_scaler0': {'loss_scale': 512.0, 'unskipped': 0}},
        }, path)
