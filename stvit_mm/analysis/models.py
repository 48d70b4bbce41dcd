"""What the analyses measure: models built from configs, and their inputs.

The project's Swin / STViT-R-Swin pairs (:data:`PAIR_CONFIGS`) and ImageNet
classifiers (:data:`CLASSIFIER_CONFIGS`), backbones and whole detectors /
segmentors / classifiers built from a config with random weights (no
pretrained checkpoint), and :class:`Subject`, a JSON-serialisable
description of a model, so that a fresh process (the CPU memory probe,
:mod:`stvit_mm.analysis.probe`) builds exactly the same one.

mmdet and mmseg are imported only when a model is built, so that
:mod:`stvit_mm.analysis.device_check` runs without them.
"""
import copy
import dataclasses
import warnings
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from stvit_mm.apis import load_config

__all__ = [
    'CLASSIFIER_CONFIGS', 'PAIR_CONFIGS', 'SWIN_CLS_MIN_SIDE', 'Subject',
    'build_backbone', 'build_model', 'build_module', 'build_subject',
    'make_batch', 'num_params'
]

#: Configs per backbone size, baseline first; COCO and ADE20K variants.
PAIR_CONFIGS = {
    'S': {
        'coco': ('configs/cascade_swin_s_3x.py',
                 'configs/cascade_stvit_r_swin_s_3x.py'),
        'ade': ('configs/upernet_swin_s_160k_ade20k.py',
                'configs/upernet_stvit_r_swin_s_160k_ade20k.py'),
    },
    'B': {
        'coco': ('configs/cascade_swin_b_3x.py',
                 'configs/cascade_stvit_r_swin_b_3x.py'),
        'ade': ('configs/upernet_swin_b_160k_ade20k.py',
                'configs/upernet_stvit_r_swin_b_160k_ade20k.py'),
    },
}

#: The ImageNet classifiers per backbone size; their baseline is
#: mmpretrain's Swin classifier of the same width
#: (:func:`stvit_mm.analysis.flops.imagenet_swin_config`).
CLASSIFIER_CONFIGS = {
    'S': 'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py',
    'B': 'configs/imagenet/stvit_r_swin_b_16xb64_in1k.py',
}
#: The smallest input side mmpretrain's Swin classifiers take: with
#: ``pad_small_map=False`` their last stage's map, ceil(side / 32), must hold
#: a 7x7 window (smaller maps fail an assertion in its window attention).
SWIN_CLS_MIN_SIDE = 32 * 6 + 1


def build_module(cfg: Config, module_cfg: dict) -> nn.Module:
    """Build ``module_cfg`` with the registry of the config's library.

    The config's ``default_scope`` is current only while building, so
    mmdet and mmseg configs can be built one after the other in one
    process.

    Args:
        cfg (Config): The config (default_scope mmdet, mmseg or
            mmpretrain), loaded
            with :func:`stvit_mm.apis.load_config`.
        module_cfg (dict): What to build.

    Returns:
        nn.Module: The built module.
    """
    import importlib

    from mmengine.registry import DefaultScope
    MODELS = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(module_cfg)


def build_backbone(cfg: Config) -> nn.Module:
    """The config's ``model.backbone``, randomly initialised, in eval mode.

    Built on the CPU: mmdet's SwinTransformer calls ``.item()`` in its
    constructor, so it cannot be built on the meta device
    (:func:`stvit_mm.utils.flops.count_macs` copies to meta itself).

    Args:
        cfg (Config): The config.

    Returns:
        nn.Module: The backbone (``init_cfg=None``).
    """
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg['init_cfg'] = None
    backbone = build_module(cfg, backbone_cfg)
    backbone.eval()  # on its own line: mmdet's Swin.train() returns None
    return backbone


def build_model(cfg: Config, model_cfg: Optional[dict] = None) -> nn.Module:
    """The config's whole detector / segmentor / classifier for inference:
    no pretrained weights, SyncBN reverted to BN (CPU), no batch augments,
    eval mode, and the config's top-level ``data_preprocessor`` when
    ``model`` has none, as mmengine's Runner builds it (mmpretrain's configs
    keep mean, std and ``to_rgb`` there only).

    Args:
        cfg (Config): The config.
        model_cfg (dict, optional): A modified copy of ``cfg.model`` to
            build instead. Defaults to None.

    Returns:
        nn.Module: The model.
    """
    from mmengine.model import revert_sync_batchnorm

    model_cfg = copy.deepcopy(cfg.model if model_cfg is None else model_cfg)
    model_cfg.backbone['init_cfg'] = None
    model_cfg.pop('pretrained', None)
    if cfg.default_scope == 'mmpretrain':
        # A classifier's train_cfg holds batch augments (mixup, cutmix),
        # which only act in training; building them makes mmengine log a
        # notice on stdout, into the tools' tables.
        model_cfg.pop('train_cfg', None)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    model = revert_sync_batchnorm(build_module(cfg, model_cfg))
    model.eval()
    return model


def num_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (shared ones once)."""
    return sum(p.numel() for p in module.parameters())


@dataclasses.dataclass(frozen=True)
class Subject:
    """A model to measure, described so that another process can build it.

    Args:
        task (str): ``'backbone'`` (the config's ``model.backbone``),
            ``'det'``, ``'seg'`` or ``'cls'`` (the whole model).
        config (str): Config path.
        sample_size (int, optional): STViT-R's ``sample_window_size`` s.
        name (str): Display name.
        train (bool): Measure a training step (backbones) instead of an
            inference forward.
        neighbourhood_impl (str, optional): STViT-R's
            ``neighbourhood_impl``, the backend of its neighbourhood
            attention; None keeps the config's.
    """
    task: str
    config: str
    sample_size: Optional[int] = None
    name: str = ''
    train: bool = False
    neighbourhood_impl: Optional[str] = None

    def to_dict(self) -> Dict:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def build_subject(subject: Subject) -> nn.Module:
    """Build a subject on the CPU in eval mode (random weights).

    Whole detectors get a final score threshold of 0: random weights
    score every class about 1/81, so without it no detection would reach
    the mask heads.

    Args:
        subject (Subject): What to build.

    Returns:
        nn.Module: The backbone or the whole model.

    Raises:
        ConfigError: If the config cannot be loaded.
    """
    cfg = load_config(subject.config)
    with warnings.catch_warnings():
        # mmdet/mmseg warn about deprecated or tracer-related details here.
        warnings.simplefilter('ignore')
        if subject.task == 'backbone':
            model = build_backbone(cfg)
        else:
            model_cfg = copy.deepcopy(cfg.model)
            rcnn = model_cfg.get('test_cfg', {}).get('rcnn')
            if subject.task == 'det' and rcnn is not None:
                rcnn['score_thr'] = 0.0
            model = build_model(cfg, model_cfg)
    backbone = model if subject.task == 'backbone' else model.backbone
    if subject.sample_size is not None:
        backbone.sample_window_size = subject.sample_size
    if subject.neighbourhood_impl is not None:
        backbone.neighbourhood_impl = subject.neighbourhood_impl
    return model


def make_batch(task: str, batch: int, size: Tuple[int, int],
               device: str) -> Union[torch.Tensor, Dict]:
    """Inputs of one forward, the same for every call (seed 0).

    Args:
        task (str): ``'backbone'``, ``'det'``, ``'seg'`` or ``'cls'``.
        batch (int): Batch size.
        size (tuple): Image (H, W).
        device (str): Device of a backbone's or classifier's input.

    Returns:
        Tensor or dict: A float image batch for a backbone or a classifier
        (its ``mode='tensor'`` input, the data preprocessor's output); for a
        detector or segmentor, the ``test_step`` data: uint8 images and data
        samples with the metainfo a test pipeline writes.
    """
    h, w = size
    gen = torch.Generator().manual_seed(0)
    if task in ('backbone', 'cls'):
        return torch.randn(batch, 3, h, w, generator=gen).to(device)
    if task == 'det':
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    inputs, samples = [], []
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen,
                                    dtype=torch.uint8))
        samples.append(Sample(metainfo=dict(
            img_id=i, img_path=f'random_{i}.jpg', ori_shape=(h, w),
            img_shape=(h, w), scale_factor=(1.0, 1.0), flip=False,
            flip_direction=None)))
    return dict(inputs=inputs, data_samples=samples)
