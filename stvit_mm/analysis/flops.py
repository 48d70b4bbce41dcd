"""FLOPs and parameters of STViT-R-Swin against Swin, measured.

The paper's FLOPs table (CVPR 2023, Table 5 for COCO at 1280x800 and
Table 14 for ADE20K at 512x512) with our measurement beside the paper's
figure: backbone GFLOPs and parameters of Swin-S, STViT-R-Swin-S, Swin-B
and STViT-R-Swin-B, and the ratio STViT-R / Swin. The backbones are built
from the project's configs (``model.backbone`` of ``configs/cascade_*_3x.py``
for COCO and ``configs/upernet_*_ade20k.py`` for ADE20K, ``init_cfg=None``),
so the table describes what those configs train. The paper's figures and
input sizes come from ``configs/metafile.yml``
(:mod:`stvit_mm.utils.metafile`).

GFLOPs are 1e9 multiply-accumulates, the unit papers (fvcore, mmcv's
get_flops) call "FLOPs". They are counted with :func:`count_macs`: torch's
FlopCounterMode, attention under the SDPA math backend (so fused and
unfused attention count alike), on a meta-device copy of the model (no
arithmetic runs, so counting Swin-B at 1280x800 takes about a second).

Whole models (:func:`count_whole_model`), at inference:

* segmentors (UperNet), single-stage detectors and mmpretrain classifiers:
  their ``mode='tensor'`` forward (backbone, neck, decode head, no auxiliary
  head; a classifier's backbone, pooling neck and head up to the logits), on
  meta;
* two-stage detectors (Cascade Mask R-CNN): ``mode='tensor'`` runs the RPN's
  NMS, which has no meta kernel, and its head cost would depend on how many
  proposals survive NMS for random weights. They are counted with the fixed
  convention of mmdet 2.x's ``forward_dummy`` (which produced the Swin
  paper's whole-detector figures): backbone, neck and RPN head convs, then
  every RoI stage's bbox head on 1000 RoIs and mask head on 100 RoIs per
  image, still on meta. RoIAlign and NMS are not counted (no MACs).
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from stvit_mm.apis import load_config
from stvit_mm.errors import ConfigError
from stvit_mm.utils.flops import count_macs
from stvit_mm.utils.metafile import (BACKBONE_GFLOPS, load_metafile,
                                     paper_numbers)

from .models import PAIR_CONFIGS, build_backbone, build_model, num_params
from .options import FlopsSettings
from .tables import format_gmacs, format_params, format_ratio, markdown_table

__all__ = [
    'DATASETS', 'InferenceForward', 'config_table', 'count_macs',
    'count_whole_model', 'flops_report', 'measure_config', 'paper_gflops',
    'paper_input_sizes', 'paper_table'
]

#: The paper table's datasets, in its order: COCO, ADE20K.
DATASETS = ('coco', 'ade')
#: RoIs per image of mmdet 2.x's ``forward_dummy`` (bbox heads, mask heads).
DUMMY_BBOX_ROIS = 1000
DUMMY_MASK_ROIS = 100

NOTES = """\
GFLOPs: 1e9 multiply-accumulates (the papers' "FLOPs"), torch FlopCounterMode
with attention under the SDPA math backend, on a meta-device copy; input
1x3xHxW. Backbones are built from the configs' model.backbone (init_cfg=None).
"""
WHOLE_MODEL_NOTES = """\
Model: the whole detector/segmentor/classifier at inference. UperNet,
single-stage detectors and classifiers: mode='tensor' (no auxiliary head; its
parameters are counted in "Model params"; a classifier up to its logits).
Two-stage detectors: backbone + neck + RPN head, then each
RoI stage's bbox head on 1000 RoIs and mask head on 100 RoIs per image
(mmdet 2.x forward_dummy convention); RoIAlign and NMS are not counted.
"""


# ---------------------------------------------------------------------------
# Whole-model counting
# ---------------------------------------------------------------------------
def _roi_heads(roi_head: nn.Module) -> Tuple[list, list]:
    """(extractor, head) pairs of the bbox and the mask branch of a
    StandardRoIHead-like (one stage) or CascadeRoIHead-like head."""

    def as_list(module):
        return list(module) if isinstance(module, nn.ModuleList) else [module]

    if getattr(roi_head, 'with_shared_head', False):
        raise ConfigError('RoI heads with a shared head (C4 models) are not '
                          'supported')
    bbox = list(zip(as_list(roi_head.bbox_roi_extractor),
                    as_list(roi_head.bbox_head))) if roi_head.with_bbox else []
    mask = []
    if getattr(roi_head, 'with_mask', False):
        heads = as_list(roi_head.mask_head)
        extractors = as_list(roi_head.mask_roi_extractor)
        if len(extractors) == 1:
            extractors = extractors * len(heads)
        mask = list(zip(extractors, heads))
    return bbox, mask


class InferenceForward(nn.Module):
    """The inference-time computation of a detector, segmentor or
    classifier, as a module whose ``forward`` takes only the image batch
    (what :func:`count_macs` needs).

    See the module docstring for what is counted for each model type.

    Args:
        model (nn.Module): An mmdet detector, mmseg segmentor or
            mmpretrain classifier.
        bbox_rois (int): RoIs per image for two-stage bbox heads.
        mask_rois (int): RoIs per image for two-stage mask heads.
    """

    def __init__(self, model: nn.Module, bbox_rois: int = DUMMY_BBOX_ROIS,
                 mask_rois: int = DUMMY_MASK_ROIS):
        super().__init__()
        self.model = model
        self.bbox_rois = bbox_rois
        self.mask_rois = mask_rois

    def forward(self, x: torch.Tensor) -> list:
        """The model's inference computation on the image batch ``x``."""
        model = self.model
        if getattr(model, 'roi_head', None) is None:
            # Segmentors, single-stage detectors and classifiers: the tensor
            # mode, which needs no data samples and runs no
            # post-processing (mmpretrain's classifiers have no _forward).
            return model(x, mode='tensor')
        feats = model.extract_feat(x)
        outs = [model.rpn_head(feats)]
        bbox, mask = _roi_heads(model.roi_head)
        for pairs, rois in ((bbox, self.bbox_rois), (mask, self.mask_rois)):
            for extractor, head in pairs:
                size = extractor.roi_layers[0].output_size
                size = (size, size) if isinstance(size, int) else tuple(size)
                roi_feats = feats[0].new_zeros(x.shape[0] * rois,
                                               extractor.out_channels, *size)
                outs.append(head(roi_feats))
        return outs


def count_whole_model(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of a detector's / segmentor's / classifier's
    inference forward (see :class:`InferenceForward`), counted on meta.

    Args:
        model (nn.Module): The detector, segmentor or classifier (eval
            mode).
        input_shape (Sequence[int]): The image batch's (N, 3, H, W).

    Returns:
        int: Multiply-accumulates.
    """
    return count_macs(InferenceForward(model), input_shape)


def measure_config(path: str, shape: Tuple[int, int],
                   whole_model: bool) -> Dict[str, int]:
    """Parameters and MACs of a config's backbone (and whole model) on one
    image of ``shape`` (H, W).

    Returns:
        dict: ``params``, ``macs``, and with ``whole_model`` also
        ``model_params``, ``model_macs``.
    """
    cfg = load_config(path)
    input_shape = (1, 3, *shape)
    with warnings.catch_warnings():
        # mmdet/mmseg warn about deprecated or tracer-related details here.
        warnings.simplefilter('ignore')
        backbone = build_backbone(cfg)
        result = dict(params=num_params(backbone),
                      macs=count_macs(backbone, input_shape))
        if whole_model:
            model = build_model(cfg)
            result.update(model_params=num_params(model),
                          model_macs=count_whole_model(model, input_shape))
    return result


# ---------------------------------------------------------------------------
# The paper's figures
# ---------------------------------------------------------------------------
def paper_input_sizes() -> Dict[str, Tuple[int, int]]:
    """The paper's input (H, W) per dataset of :data:`DATASETS`: the
    metafile's ``FLOPs Input Size`` of the Swin-S configs."""
    models = load_metafile()
    sizes = {}
    for dataset in DATASETS:
        config = PAIR_CONFIGS['S'][dataset][0]
        size = models[config].get('Metadata', {}).get('FLOPs Input Size')
        if size is None:
            raise ConfigError(f'the metafile gives no `FLOPs Input Size` '
                              f'for {config}')
        sizes[dataset] = tuple(size)
    return sizes


def paper_gflops(config: str) -> Optional[float]:
    """The paper's backbone GFLOPs of a config, from the metafile (None
    if it gives none)."""
    return paper_numbers(config).get(BACKBONE_GFLOPS)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
def paper_table(models: Sequence[str], shapes: List[Tuple[str, Tuple]],
                whole_model: bool) -> str:
    """The paper's comparison, measured.

    Args:
        models (Sequence[str]): Backbone sizes, ``'S'`` and/or ``'B'``.
        shapes (list): ``(dataset, (H, W))`` pairs; dataset ``'coco'``,
            ``'ade'`` or ``'custom'`` (custom shapes use the COCO configs
            and have no paper figure).
        whole_model (bool): Add whole-model parameters and GFLOPs.

    Returns:
        str: The markdown table.
    """
    headers = ['Input', 'Backbone', 'Params (M)', 'GFLOPs', 'GFLOPs (paper)',
               'STViT-R / Swin', 'STViT-R / Swin (paper)']
    if whole_model:
        headers += ['Model', 'Model params (M)', 'Model GFLOPs',
                    'Model STViT-R / Swin']
    rows = []
    for dataset, shape in shapes:
        for size in models:
            configs = PAIR_CONFIGS[size]['ade' if dataset == 'ade' else
                                         'coco']
            paper = ((None, None) if dataset not in DATASETS else
                     tuple(paper_gflops(c) for c in configs))
            swin, stvit = (measure_config(c, shape, whole_model)
                           for c in configs)
            for name, res, fig in ((f'Swin-{size}', swin, paper[0]),
                                   (f'STViT-R-Swin-{size}', stvit, paper[1])):
                is_stvit = res is stvit
                row = [
                    f'{dataset} {shape[0]}x{shape[1]}', name,
                    format_params(res['params']), format_gmacs(res['macs']),
                    '-' if fig is None else str(fig),
                    format_ratio(stvit['macs'], swin['macs'], 3)
                    if is_stvit else '',
                    format_ratio(paper[1], paper[0], 3)
                    if is_stvit and fig is not None else ''
                ]
                if whole_model:
                    row += [
                        'UperNet' if dataset == 'ade' else
                        'Cascade Mask R-CNN',
                        format_params(res['model_params']),
                        format_gmacs(res['model_macs']),
                        format_ratio(stvit['model_macs'], swin['model_macs'],
                                     3) if is_stvit else ''
                    ]
                rows.append(row)
    return markdown_table(headers, rows)


def config_table(configs: Sequence[str], shapes: Sequence[Tuple[int, int]],
                 whole_model: bool) -> str:
    """Parameters and GFLOPs of any configs' backbones (and models).

    Args:
        configs (Sequence[str]): Config paths.
        shapes (Sequence[tuple]): (H, W) inputs; empty: the paper's COCO
            input (800x1280) for mmdet configs, its ADE20K input (512x512)
            for mmseg ones, 224x224 for mmpretrain ones. An STViT-R-Swin
            classifier is followed by mmpretrain's Swin of its width and
            the ratio (of the whole classifiers too with ``whole_model``).
        whole_model (bool): Add whole-model parameters and GFLOPs.

    Returns:
        str: The markdown table.
    """
    headers = ['Config', 'Input', 'Backbone', 'Params (M)', 'GFLOPs']
    if whole_model:
        headers += ['Model params (M)', 'Model GFLOPs']
    rows = []
    for path in configs:
        cfg = load_config(path)
        default = IMAGENET_INPUT if cfg.default_scope == 'mmpretrain' else \
            paper_input_sizes()['coco' if cfg.default_scope == 'mmdet' else
                                'ade']
        twin = imagenet_swin_config(cfg)
        for shape in shapes or [default]:
            res = measure_config(path, shape, whole_model)
            row = [osp.basename(path), f'{shape[0]}x{shape[1]}',
                   cfg.model.backbone.type, format_params(res['params']),
                   format_gmacs(res['macs'])]
            if whole_model:
                row += [format_params(res['model_params']),
                        format_gmacs(res['model_macs'])]
            rows.append(row)
            if twin:  # the classifier against mmpretrain's Swin, same count
                base = measure_config(twin, shape, whole_model)
                rows.append([f'mmpretrain {osp.basename(twin)}',
                             f'{shape[0]}x{shape[1]}', 'SwinTransformer',
                             format_params(base['params']),
                             format_gmacs(base['macs'])] +
                            ([format_params(base['model_params']),
                              format_gmacs(base['model_macs'])]
                             if whole_model else []))
                rows.append(['ratio STViT-R / Swin', '', '', '',
                             format_ratio(res['macs'], base['macs'])] +
                            (['', format_ratio(res['model_macs'],
                                               base['model_macs'])]
                             if whole_model else []))
    return markdown_table(headers, rows)


#: The ImageNet classifier's input, and mmpretrain's Swin of each width.
IMAGENET_INPUT = (224, 224)
IMAGENET_SWIN = {96: 'swin-small_16xb64_in1k.py',
                 128: 'swin-base_16xb64_in1k.py'}


def imagenet_swin_config(cfg) -> Optional[str]:
    """mmpretrain's Swin config of an STViT-R-Swin classifier's width, or
    None for other configs."""
    backbone = cfg.model.get('backbone', {})
    name = IMAGENET_SWIN.get(backbone.get('embed_dims'))
    if (cfg.default_scope != 'mmpretrain' or name is None
            or str(backbone.get('type')).split('.')[-1] != 'STViTRSwin'):
        return None
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                    'swin_transformer', name)


def flops_report(settings: FlopsSettings) -> str:
    """The FLOPs table of ``tools/analysis/get_flops.py`` and its notes.

    Args:
        settings (FlopsSettings): What to count.

    Returns:
        str: The markdown table, a blank line and the notes (newline at
        the end).

    Raises:
        ConfigError: A config is missing or cannot be counted, or the
            metafile cannot be read.
    """
    if settings.configs:
        table = config_table(settings.configs, settings.shapes,
                             settings.whole_model)
    else:
        shapes = [] if settings.no_paper_shapes else list(
            paper_input_sizes().items())
        shapes += [('custom', s) for s in settings.shapes]
        table = paper_table(settings.models, shapes, settings.whole_model)
    return (f'{table}\n\n{NOTES}' +
            (WHOLE_MODEL_NOTES if settings.whole_model else ''))
