"""FLOPs and parameters of STViT-R-Swin against Swin, measured.

By default it prints the paper's FLOPs table (CVPR 2023, Table 5 for COCO
at 1280x800 and Table 14 for ADE20K at 512x512) with our measurement beside
the paper's figure: backbone GFLOPs and parameters of Swin-S,
STViT-R-Swin-S, Swin-B and STViT-R-Swin-B, and the ratio STViT-R / Swin.
The backbones are built from the project's configs (``model.backbone`` of
``configs/cascade_*_3x.py`` for COCO and ``configs/upernet_*_ade20k.py`` for
ADE20K, ``init_cfg=None``), so the table describes what those configs train.

GFLOPs are 1e9 multiply-accumulates, the unit papers (fvcore, mmcv's
get_flops) call "FLOPs". They are counted with
:func:`stvit_mm.utils.flops.count_macs`: torch's FlopCounterMode, attention
under the SDPA math backend (so fused and unfused attention count alike),
on a meta-device copy of the model (no arithmetic runs, so counting Swin-B
at 1280x800 takes about a second).

``--whole-model`` adds the whole detector / segmentor at inference:

* segmentors (UperNet) and single-stage detectors: their ``mode='tensor'``
  forward (backbone, neck, decode head; no auxiliary head), on meta;
* two-stage detectors (Cascade Mask R-CNN): ``mode='tensor'`` runs the RPN's
  NMS, which has no meta kernel, and its head cost would depend on how many
  proposals survive NMS for random weights. They are counted with the fixed
  convention of mmdet 2.x's ``forward_dummy`` (which produced the Swin
  paper's whole-detector figures): backbone, neck and RPN head convs, then
  every RoI stage's bbox head on 1000 RoIs and mask head on 100 RoIs per
  image, still on meta. RoIAlign and NMS are not counted (no MACs).

Examples::

    python tools/analysis/get_flops.py
    python tools/analysis/get_flops.py --whole-model
    python tools/analysis/get_flops.py --shape 1024 1024 --models S
    python tools/analysis/get_flops.py --config configs/examples/\\
mask-rcnn_stvit-r-swin-t_fpn_1x_coco.py --whole-model
"""
import argparse
import copy
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

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
#: The paper's input per dataset, (H, W).
DATASET_SHAPES = {'coco': (800, 1280), 'ade': (512, 512)}
#: The paper's backbone GFLOPs: (Swin, STViT-R-Swin) per dataset and size.
PAPER_GFLOPS = {
    ('coco', 'S'): (194, 134),
    ('coco', 'B'): (343, 233),
    ('ade', 'S'): (49, 34),
    ('ade', 'B'): (87, 60),
}
#: RoIs per image of mmdet 2.x's ``forward_dummy`` (bbox heads, mask heads).
DUMMY_BBOX_ROIS = 1000
DUMMY_MASK_ROIS = 100


# ---------------------------------------------------------------------------
# Building models from configs
# ---------------------------------------------------------------------------
def resolve_path(path: str) -> str:
    """Find a config: as given (relative to the current directory), else
    relative to the repository root.

    Raises:
        FileNotFoundError: If it is in neither place.
    """
    for candidate in (path, osp.join(REPO, path)):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'config not found: {path}')


def load_config(path: str):
    """Load a config file and import what building its model needs.

    Args:
        path (str): Config path (relative paths may be relative to the
            repository root).

    Returns:
        mmengine.Config: The config (default_scope mmdet or mmseg).
    """
    from mmengine.config import Config

    cfg = Config.fromfile(resolve_path(path))
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f'{path}: default_scope is {scope!r}; only mmdet and '
                         'mmseg configs are supported')
    import stvit_mm  # noqa: F401  (registers STViTRSwin)
    if scope == 'mmdet':
        import mmdet.models  # noqa: F401
    else:
        import mmseg.models  # noqa: F401
    return cfg


def _build(cfg, module_cfg) -> nn.Module:
    """Build ``module_cfg`` with the registry of the config's library, its
    ``default_scope`` current only while building (so mmdet and mmseg
    configs can be built one after the other in one process)."""
    from mmengine.registry import DefaultScope
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(module_cfg)


def build_backbone(cfg) -> nn.Module:
    """The config's ``model.backbone``, randomly initialised, in eval mode.

    Built on the CPU: mmdet's SwinTransformer calls ``.item()`` in its
    constructor, so it cannot be built on the meta device
    (:func:`count_macs` copies to meta itself).
    """
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg['init_cfg'] = None
    backbone = _build(cfg, backbone_cfg)
    backbone.eval()  # on its own line: mmdet's Swin.train() returns None
    return backbone


def build_model(cfg, model_cfg=None) -> nn.Module:
    """The config's whole detector / segmentor for inference: no pretrained
    weights, SyncBN reverted to BN (CPU), eval mode.

    Args:
        cfg (mmengine.Config): The config.
        model_cfg (dict, optional): A modified copy of ``cfg.model`` to build
            instead. Defaults to None.
    """
    from mmengine.model import revert_sync_batchnorm

    model_cfg = copy.deepcopy(cfg.model if model_cfg is None else model_cfg)
    model_cfg.backbone['init_cfg'] = None
    model_cfg.pop('pretrained', None)
    model = revert_sync_batchnorm(_build(cfg, model_cfg))
    model.eval()
    return model


def num_params(module: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------
# Whole-model counting
# ---------------------------------------------------------------------------
def _roi_heads(roi_head) -> Tuple[list, list]:
    """(extractor, head) pairs of the bbox and the mask branch of a
    StandardRoIHead-like (one stage) or CascadeRoIHead-like head."""

    def as_list(module):
        return list(module) if isinstance(module, nn.ModuleList) else [module]

    if getattr(roi_head, 'with_shared_head', False):
        raise NotImplementedError('RoI heads with a shared head (C4 models) '
                                  'are not supported')
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
    """The inference-time computation of a detector or segmentor, as a
    module whose ``forward`` takes only the image batch (what
    :func:`count_macs` needs).

    See the module docstring for what is counted for each model type.

    Args:
        model (nn.Module): An mmdet detector or mmseg segmentor.
        bbox_rois (int): RoIs per image for two-stage bbox heads.
        mask_rois (int): RoIs per image for two-stage mask heads.
    """

    def __init__(self, model: nn.Module, bbox_rois: int = DUMMY_BBOX_ROIS,
                 mask_rois: int = DUMMY_MASK_ROIS):
        super().__init__()
        self.model = model
        self.bbox_rois = bbox_rois
        self.mask_rois = mask_rois

    def forward(self, x: torch.Tensor):
        model = self.model
        if getattr(model, 'roi_head', None) is None:
            # Segmentors and single-stage detectors: the tensor mode, which
            # needs no data samples and runs no post-processing.
            return model._forward(x)
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


def count_whole_model(model: nn.Module,
                      input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of a detector's / segmentor's inference forward
    (see :class:`InferenceForward`), counted on meta."""
    from stvit_mm.utils.flops import count_macs
    return count_macs(InferenceForward(model), input_shape)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; numbers are expected pre-formatted as strings."""
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _g(macs: Optional[int]) -> str:
    """GMACs: one decimal, three significant digits below 10."""
    if macs is None:
        return '-'
    g = macs / 1e9
    return f'{g:.1f}' if g >= 10 else f'{g:.3g}'


def _m(params: Optional[int]) -> str:
    return '-' if params is None else f'{params / 1e6:.2f}'


def _ratio(num, den) -> str:
    return '-' if num is None or den is None else f'{num / den:.3f}'


def measure_config(path: str, shape: Tuple[int, int],
                   whole_model: bool) -> Dict:
    """Parameters and MACs of a config's backbone (and whole model) on one
    image of ``shape`` (H, W).

    Returns:
        dict: ``params``, ``macs``, and with ``whole_model`` also
        ``model_params``, ``model_macs``.
    """
    cfg = load_config(path)
    input_shape = (1, 3, *shape)
    from stvit_mm.utils.flops import count_macs
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
            configs = PAIR_CONFIGS[size][
                'ade' if dataset == 'ade' else 'coco']
            paper = PAPER_GFLOPS.get((dataset, size), (None, None))
            swin, stvit = (measure_config(c, shape, whole_model)
                           for c in configs)
            for name, res, fig in ((f'Swin-{size}', swin, paper[0]),
                                   (f'STViT-R-Swin-{size}', stvit, paper[1])):
                is_stvit = res is stvit
                row = [
                    f'{dataset} {shape[0]}x{shape[1]}', name,
                    _m(res['params']), _g(res['macs']),
                    '-' if fig is None else str(fig),
                    _ratio(stvit['macs'], swin['macs']) if is_stvit else '',
                    _ratio(paper[1], paper[0])
                    if is_stvit and fig is not None else ''
                ]
                if whole_model:
                    row += [
                        'UperNet' if dataset == 'ade' else
                        'Cascade Mask R-CNN',
                        _m(res['model_params']), _g(res['model_macs']),
                        _ratio(stvit['model_macs'], swin['model_macs'])
                        if is_stvit else ''
                    ]
                rows.append(row)
    return markdown_table(headers, rows)


def config_table(configs: Sequence[str], shapes: Sequence[Tuple[int, int]],
                 whole_model: bool) -> str:
    """Parameters and GFLOPs of any configs' backbones (and models).

    Args:
        configs (Sequence[str]): Config paths.
        shapes (Sequence[tuple]): (H, W) inputs; empty: 800x1280 for mmdet
            configs, 512x512 for mmseg ones.
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
        default = DATASET_SHAPES[
            'coco' if cfg.default_scope == 'mmdet' else 'ade']
        for shape in shapes or [default]:
            res = measure_config(path, shape, whole_model)
            row = [osp.basename(path), f'{shape[0]}x{shape[1]}',
                   cfg.model.backbone.type, _m(res['params']),
                   _g(res['macs'])]
            if whole_model:
                row += [_m(res['model_params']), _g(res['model_macs'])]
            rows.append(row)
    return markdown_table(headers, rows)


NOTES = """\
GFLOPs: 1e9 multiply-accumulates (the papers' "FLOPs"), torch FlopCounterMode
with attention under the SDPA math backend, on a meta-device copy; input
1x3xHxW. Backbones are built from the configs' model.backbone (init_cfg=None).
"""
WHOLE_MODEL_NOTES = """\
Model: the whole detector/segmentor at inference. UperNet and single-stage
detectors: mode='tensor' (no auxiliary head; its parameters are counted in
"Model params"). Two-stage detectors: backbone + neck + RPN head, then each
RoI stage's bbox head on 1000 RoIs and mask head on 100 RoIs per image
(mmdet 2.x forward_dummy convention); RoIAlign and NMS are not counted.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Backbone (and whole-model) GFLOPs and parameters of '
        'STViT-R-Swin vs Swin, measured with count_macs, beside the paper '
        '(Table 5: COCO 1280x800, Table 14: ADE20K 512x512).')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        action='append',
        default=[],
        metavar=('H', 'W'),
        help='add an input size (repeatable); paper-table rows at custom '
        'sizes use the COCO configs. With --config: the sizes to count at')
    parser.add_argument(
        '--no-paper-shapes',
        action='store_true',
        help='leave out the paper sizes (COCO 800x1280, ADE20K 512x512); '
        'only the --shape sizes are counted')
    parser.add_argument(
        '--models',
        nargs='+',
        choices=sorted(PAIR_CONFIGS),
        default=['S', 'B'],
        help='backbone sizes of the paper table (default: S B)')
    parser.add_argument(
        '--config',
        action='append',
        default=[],
        help='count this config\'s backbone instead of the paper table '
        '(repeatable); sizes from --shape, else 800x1280 (mmdet) / 512x512 '
        '(mmseg)')
    parser.add_argument(
        '--whole-model',
        action='store_true',
        help='also count the whole detector/segmentor at inference (see the '
        'notes printed under the table)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    shapes = [tuple(s) for s in args.shape]
    if any(h < 1 or w < 1 for h, w in shapes):
        print(f'error: --shape sizes must be positive, got {shapes}',
              file=sys.stderr)
        return 2
    try:
        if args.config:
            table = config_table(args.config, shapes, args.whole_model)
        else:
            if args.no_paper_shapes and not shapes:
                print('error: --no-paper-shapes needs at least one --shape',
                      file=sys.stderr)
                return 2
            all_shapes = [] if args.no_paper_shapes else [
                (d, s) for d, s in DATASET_SHAPES.items()]
            all_shapes += [('custom', s) for s in shapes]
            table = paper_table(args.models, all_shapes, args.whole_model)
    except (FileNotFoundError, ValueError, NotImplementedError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(table)
    print()
    print(NOTES + (WHOLE_MODEL_NOTES if args.whole_model else ''), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
