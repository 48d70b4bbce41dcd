"""Export a config's model (or its backbone) to ONNX and check it in ONNX
Runtime before declaring success: what ``tools/deployment/pytorch2onnx.py``
does.

What is exported (``what``):

- ``'backbone'``: the config's backbone (STViT-R-Swin, or mmdet / mmseg
  Swin), the normalised image to its feature maps (:func:`export_backbone`'s
  input and outputs);
- ``'model'``: for an mmseg config the whole segmentor, the image as loaded
  to class logits (or labels) at the input's resolution
  (:class:`~.wrappers.SegmentorGraph`); for an mmdet config the backbone and
  neck, the image as loaded to the feature pyramid
  (:class:`~.wrappers.DetectorFeaturesGraph`); for an mmpretrain config
  the whole classifier, the image as loaded to class logits
  (:class:`~.wrappers.ClassifierGraph`). The RoI heads of Cascade Mask
  R-CNN are not exported: see the README's deployment section.

STViT-R-Swin models export with dynamic batch, height and width (one file
serves every size), except the ImageNet variant (``variant='imagenet'``,
the classifiers), whose export has a dynamic batch only
(:func:`dynamic_dims`); models with mmdet's / mmseg's ``SwinTransformer``
with a fixed size (``dynamic=False``).

Nothing is written unless the export passed ``onnx.checker`` and matched
PyTorch in ONNX Runtime; an existing file is only replaced when asked.
"""
import dataclasses
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

from torch import nn

from ..analysis.flops import IMAGENET_INPUT
from ..engine.fileio import atomic_write
from ..errors import ConfigError, InputError
from .export_ops import export_safe_pooling
from .onnx_export import DEFAULT_OPSET, check_onnx, export_module
from .wrappers import (ClassifierGraph, DetectorFeaturesGraph,
                       SegmentorGraph, random_image)

__all__ = ['WHATS', 'SUPPORTED_BACKBONES', 'ExportReport', 'check_out_path',
           'build_export_subject', 'dynamic_dims', 'input_shape',
           'check_sizes', 'export_config', 'format_report']

WHATS = ('backbone', 'model')
#: Backbone types this export supports (the registry name, with or without
#: the library prefix).
SUPPORTED_BACKBONES = ('STViTRSwin', 'SwinTransformer')
#: (H, W) checked (and, with ``dynamic=False``, exported) when none is
#: given: the ImageNet classifiers' training size, else 512x512.
DEFAULT_SIZES = {'mmpretrain': IMAGENET_INPUT}
DEFAULT_SIZE = (512, 512)
#: What a whole-model export of each library is, for messages.
_KINDS = dict(mmdet="a detector's feature pyramid",
              mmseg='a segmentor', mmpretrain='a classifier')
_ALL_DIMS = {0: 'batch', 2: 'height', 3: 'width'}


@dataclasses.dataclass
class ExportReport:
    """What :func:`export_config` wrote and measured.

    Attributes:
        path (str): The ``.onnx`` file.
        what (str): ``'backbone'`` or ``'model'``.
        graph (str): What the graph computes, for the user.
        input_name (str): The graph's input.
        output_names (list[str]): The graph's outputs.
        dynamic (tuple[str]): The input's dynamic dimensions, e.g.
            ``('batch', 'height', 'width')``; empty when fixed.
        checks (list[dict]): Per checked input, its ``shape`` and the
            relative error of each output against PyTorch.
        export_seconds (float): Time of the export itself.
        size_mb (float): Size of the file.
    """
    path: str
    what: str
    graph: str
    input_name: str
    output_names: List[str]
    dynamic: Tuple[str, ...]
    checks: List[Dict] = dataclasses.field(default_factory=list)
    export_seconds: float = 0.
    size_mb: float = 0.


def check_out_path(out: str, force: bool) -> None:
    """Refuse an output path that exists (unless ``force``) or whose folder
    cannot be created, before anything is built.

    Raises:
        InputError: Naming the path.
    """
    if osp.isdir(out):
        raise InputError(f'--out {out} is a directory; give a file name '
                         'such as model.onnx')
    if osp.exists(out) and not force:
        raise InputError(f'--out {out} exists; pass --force to replace it, '
                         'or choose another name')


def _backbone_type(cfg) -> str:
    backbone = cfg.get('model', {}).get('backbone')
    if not backbone or 'type' not in backbone:
        raise ConfigError(f'{cfg.filename}: no model.backbone to export')
    name = backbone['type']
    name = name if isinstance(name, str) else name.__name__
    if name.split('.')[-1] not in SUPPORTED_BACKBONES:
        raise ConfigError(
            f'{cfg.filename}: backbone {name!r} is not supported; the export '
            f'handles {", ".join(SUPPORTED_BACKBONES)} (STViT-R-Swin and '
            'mmdet/mmseg Swin)')
    return name


def build_export_subject(cfg, what: str, checkpoint: Optional[str] = None,
                         seg_output: str = 'logits'
                         ) -> Tuple[nn.Module, nn.Module, str, List[str]]:
    """Build the module to export from a loaded config.

    Args:
        cfg (Config): The loaded config.
        what (str): One of :data:`WHATS`.
        checkpoint (str, optional): Weights of the whole detector /
            segmentor / classifier; they must fit the config (the key lists otherwise).
            Without it the weights are random (timing, testing).
        seg_output (str): ``'logits'`` or ``'labels'``; ``'labels'`` only
            for a segmentor exported whole.

    Returns:
        tuple: The exported module, the whole model, a description of the
        graph and the output names.

    Raises:
        ConfigError: An unknown ``what``, an unsupported backbone, or
            ``'labels'`` for anything but a whole segmentor.
        CheckpointError: A checkpoint that cannot be read or does not fit.
    """
    from ..analysis.models import build_model
    from ..apis.config import get_scope
    from ..apis.inference import load_weights
    if what not in WHATS:
        raise ConfigError(f'--what {what!r}: choose one of {", ".join(WHATS)}')
    backbone_name = _backbone_type(cfg)
    scope = get_scope(cfg)
    if seg_output != 'logits' and (what != 'model' or scope != 'mmseg'):
        # Checked before the (slow) build: only a segmentor has a label map.
        raise ConfigError(
            f'--seg-output {seg_output}: only a segmentor exported whole '
            f'(--what model) outputs labels; {cfg.filename} exports '
            f'{"a backbone" if what == "backbone" else _KINDS[scope]}')
    model = build_model(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint, cfg)
    model.eval()
    levels = len(model.backbone.out_indices)
    if what == 'backbone':
        module = model.backbone
        names = [f'stage{i}' for i in model.backbone.out_indices]
        graph = (f'{backbone_name}: normalised image -> {levels} feature '
                 'maps')
    elif scope == 'mmpretrain':
        module = ClassifierGraph(model)
        names = ['logits']
        graph = (f'{type(model).__name__} + {backbone_name}: image (BGR, '
                 f'0..255) -> logits (N, {model.head.num_classes})')
    elif scope == 'mmseg':
        module = SegmentorGraph(model, seg_output)
        names = [seg_output]
        graph = (f'{type(model).__name__} + {backbone_name}: image (BGR, '
                 f'0..255) -> {seg_output} at input resolution')
    else:
        module = DetectorFeaturesGraph(model)
        neck = getattr(model, 'neck', None)
        levels = getattr(neck, 'num_outs', levels)
        names = [f'level{i}' for i in range(levels)]
        graph = (f'{backbone_name} + {type(neck).__name__}: image (BGR, '
                 f'0..255) -> {levels} pyramid levels')
    module.eval()  # not chained: mmdet's Swin.train() returns None
    return module, model, graph, names


def dynamic_dims(cfg, dynamic: bool = True) -> Dict[int, str]:
    """The dimensions of the image input that the export keeps dynamic.

    Args:
        cfg (Config): The loaded config.
        dynamic (bool): False for a fixed size (``--static``).

    Returns:
        dict[int, str]: Name by index of (N, 3, H, W): batch, height and
        width; the batch only for STViT-R-Swin's ImageNet variant, whose
        stage 3 computes the starts of its key neighbourhoods in Python
        from the map size (``key_window_starts``), so an export with a
        dynamic height and width comes out fixed to the traced size.

    Raises:
        ConfigError: ``dynamic`` with mmdet's / mmseg's Swin, which exports
            with a fixed size only.
    """
    if not dynamic:
        return {}
    backbone = _backbone_type(cfg)
    if backbone.split('.')[-1] == 'SwinTransformer':
        raise ConfigError(
            f'{cfg.filename}: the {backbone} backbone exports with a '
            'fixed input size only: it pads every stage to whole windows by '
            "Python arithmetic on the size, whose symbolic form torch.export "
            'did not finish simplifying in 20 minutes. Pass --static (and '
            '--shape H W --batch-size N of your deployment).')
    if cfg.model.backbone.get('variant') == 'imagenet':
        return {0: 'batch'}
    return dict(_ALL_DIMS)


def input_shape(cfg, shape: Sequence[Optional[int]]) -> Tuple[int, ...]:
    """The (N, 3, H, W) to check, H and W by task when None
    (:data:`DEFAULT_SIZES`: 224x224 for a classifier, else 512x512).

    Raises:
        ConfigError: Not N 3 H W sizes of at least 1.
    """
    if len(shape) != 4 or shape[1] != 3:
        raise ConfigError(f'--shape: expected N 3 H W image sizes, got '
                          f'{tuple(shape)}')
    size = DEFAULT_SIZES.get(cfg.get('default_scope'), DEFAULT_SIZE)
    shape = (*shape[:2], *(s if s is not None else d
                           for s, d in zip(shape[2:], size)))
    if min(shape) < 1:
        raise ConfigError(f'--shape: expected N 3 H W image sizes, got '
                          f'{shape}')
    return shape


def check_sizes(shape: Sequence[int], dims: Dict[int, str]) -> List[Tuple]:
    """The inputs an export is checked on: the requested (N, 3, H, W), and
    for a graph with dynamic dimensions ``dims`` (:func:`dynamic_dims`)
    also another batch (2, or 3 when 2 was requested), at an odd size near
    the requested one when height and width are dynamic."""
    n, _, h, w = shape
    sizes = [(n, 3, h, w)]
    if 2 in dims:
        sizes.append((2, 3, h // 2 + 13, w // 2 + 7))
    elif dims:
        sizes.append((3 if n == 2 else 2, 3, h, w))
    return sizes


def export_config(config: str,
                  out: str,
                  checkpoint: Optional[str] = None,
                  what: str = 'model',
                  shape: Sequence[Optional[int]] = (1, 3, None, None),
                  dynamic: bool = True,
                  seg_output: str = 'logits',
                  force: bool = False,
                  rtol: float = 1e-4,
                  opset: int = DEFAULT_OPSET,
                  cfg_options: Optional[dict] = None) -> ExportReport:
    """Export a config's model or backbone to ONNX, check it, then write it.

    The graph is traced and written to a temporary folder, checked with
    ``onnx.checker`` and run in ONNX Runtime against PyTorch on the inputs of
    :func:`check_sizes`; only then is it written to ``out`` (atomically).

    Args:
        config (str): An mmdet, mmseg or mmpretrain config with an
            STViT-R-Swin or Swin backbone.
        out (str): The ``.onnx`` file to write.
        checkpoint (str, optional): The model's weights (random without).
        what (str): ``'backbone'`` or ``'model'`` (see the module doc).
        shape (Sequence[int]): (N, 3, H, W) to check (and, with
            ``dynamic=False``, the only size the graph serves); H and W
            None: 224x224 for a classifier, else 512x512.
        dynamic (bool): Dynamic batch, height and width (the batch only
            for classifiers, see :func:`dynamic_dims`). Defaults to True.
        seg_output (str): Segmentors: ``'logits'`` or ``'labels'``.
        force (bool): Replace an existing ``out``.
        rtol (float): Largest relative error accepted per output.
        opset (int): ONNX opset.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        ExportReport: What was written and how close it is.

    Raises:
        InputError: ``out`` exists (without ``force``) or is a folder.
        ConfigError: Unknown ``what``, unsupported backbone, bad config or
            shape, ``seg_output='labels'`` for anything but a segmentor.
        CheckpointError: A checkpoint that cannot be read or does not fit.
        OnnxMismatchError: ONNX Runtime differs from PyTorch; nothing is
            written.
    """
    from ..apis.config import load_config
    check_out_path(out, force)
    cfg = load_config(config, cfg_options)
    shape = input_shape(cfg, shape)
    dims = dynamic_dims(cfg, dynamic)
    module, _, graph, names = build_export_subject(cfg, what, checkpoint,
                                                   seg_output)
    normalised = what == 'backbone'
    # Traced at a batch of 2 and (dynamic) sizes that are no window
    # multiple, so that no dimension is specialised to a special value
    # (see onnx_export); a fixed dimension at the requested size.
    example_shape = tuple(
        (2, 3, 237, 341)[i] if i in dims else shape[i] for i in range(4))
    inputs = [_example(s, normalised, seed)
              for seed, s in enumerate(check_sizes(shape, dims))]
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'model.onnx')
        start = time.perf_counter()
        with export_safe_pooling(module):
            export_module(module, path, _example(example_shape, normalised),
                          dims, input_name='images', output_names=names,
                          opset=opset)
        seconds = time.perf_counter() - start
        checks = check_onnx(path, module, inputs, rtol=rtol)
        with open(path, 'rb') as f:
            data = f.read()
    atomic_write(data, out)
    return ExportReport(path=out, what=what, graph=graph,
                        input_name='images', output_names=names,
                        dynamic=tuple(dims.values()), checks=checks,
                        export_seconds=seconds, size_mb=len(data) / 2**20)


def _example(shape, normalised: bool, seed: int = 0):
    image = random_image(shape, seed)
    # A backbone takes a normalised image: roughly zero mean, unit spread.
    return (image - 127.5) / 64. if normalised else image


def format_report(report: ExportReport) -> str:
    """The lines the tool prints."""
    lines = [
        f'wrote {report.path} ({report.size_mb:.1f} MB, exported in '
        f'{report.export_seconds:.0f} s)',
        f'graph: {report.graph}',
        f'input: {report.input_name} (N, 3, H, W)'
        + (f', dynamic {"/".join(report.dynamic)}' if report.dynamic
           else ''),
        f'outputs: {", ".join(report.output_names)}',
    ]
    for check in report.checks:
        errors = ', '.join(f'{e:.1e}' for e in check['errors'])
        lines.append(f'ONNX Runtime vs PyTorch at {check["shape"]}: '
                     f'relative error {errors}')
    return '\n'.join(lines)

