"""ONNX export of the STViT-R-Swin backbone, and its check in ONNX Runtime.

One exported file serves every input size the PyTorch model accepts: batch,
height and width are dynamic. The export goes through torch's current
exporter (``torch.onnx.export(..., dynamo=True)``, i.e. ``torch.export``
and onnxscript). While it runs, the layers take their export path (see
:mod:`stvit_mm.models.layers.capture`): the sparsified stage's indices and
masks are computed in the graph from the symbolic size instead of being
cached per size, attention is exported as its plain math, and the adaptive
max pooling of each 7x7 window as one max per (static) bin. Eager PyTorch is
unchanged.

Needs ``onnx``, ``onnxscript`` and (for :func:`check_onnx`)
``onnxruntime`` (pinned in ``requirements.txt``).

Example::

    model = STViTRSwin(...).eval()
    export_backbone(model, 'stvit_r_swin.onnx')
    check_onnx('stvit_r_swin.onnx', model,
               [torch.randn(1, 3, 800, 1216), torch.randn(2, 3, 97, 61)])
"""
import contextlib
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import StvitMMError

__all__ = ['export_backbone', 'export_module', 'check_onnx',
           'OnnxMismatchError', 'DEFAULT_OPSET', 'relative_error']

#: ONNX opset of the export: 18, the opset torch's ONNX function library
#: (torchlib) is written for. Attention exports as MatMul, Add and Softmax.
DEFAULT_OPSET = 18

#: Shape of the example input the graph is traced with. Any size works as
#: the graph is dynamic; this one pads both sides to whole windows in every
#: stage and gives every stage several windows, so that no size takes a
#: special value (0 or 1) while tracing.
DEFAULT_EXAMPLE_SIZE = (2, 3, 237, 341)

INPUT_NAME = 'images'


class OnnxMismatchError(StvitMMError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the tolerance."""


def relative_error(actual: Tensor, expected: Tensor) -> float:
    """``max|actual - expected| / max|expected|`` (the tolerance measure of
    :func:`check_onnx`)."""
    scale = expected.abs().max().clamp_min(1e-12)
    return ((actual - expected).abs().max() / scale).item()


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise StvitMMError(
            f'ONNX export needs the {module!r} package; install the pinned '
            'versions with `pip install -r requirements.txt`') from None


def _output_names(model: nn.Module) -> List[str]:
    indices = getattr(model, 'out_indices', None)
    if indices is None:
        return None
    return [f'stage{i}' for i in indices]


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _fast_fake_tensors():
    """Tracing with symbolic sizes spends much of its time validating the
    fake-tensor cache, which symbolic shapes rarely hit; without the cache
    the export is about a fifth faster (same graph)."""
    try:
        from torch._dynamo import config
    except ImportError:
        return contextlib.nullcontext()
    if not hasattr(config, 'fake_tensor_cache_enabled'):
        return contextlib.nullcontext()
    return config.patch(fake_tensor_cache_enabled=False)


def export_backbone(model: nn.Module,
                    path: str,
                    opset: int = DEFAULT_OPSET,
                    dynamic: bool = True,
                    example_size: Sequence[int] = DEFAULT_EXAMPLE_SIZE,
                    optimize: bool = True,
                    external_data: bool = False,
                    verbose: bool = False) -> str:
    """Export a backbone (e.g. :class:`~stvit_mm.models.STViTRSwin`) to ONNX.

    The model is exported in eval mode (its mode is restored afterwards), on
    the CPU, in fp32. Its input is named ``images``; its outputs
    ``stage{i}`` for each of its ``out_indices``. About 30 s for the tiny
    test model and 90 s for STViT-R-Swin-S on two CPU cores.

    Args:
        model (nn.Module): The backbone; ``forward(images)`` returns a
            tuple of feature maps.
        path (str): Where to write the ``.onnx`` file.
        opset (int): ONNX opset version. Defaults to :data:`DEFAULT_OPSET`.
        dynamic (bool): Make batch, height and width dynamic, so that the
            file serves every input size. With False the graph only serves
            ``example_size``. Defaults to True.
        example_size (Sequence[int]): (N, C, H, W) of the example input the
            model is traced with. Defaults to :data:`DEFAULT_EXAMPLE_SIZE`.
        optimize (bool): Run onnxscript's graph optimizer (constant folding,
            dead-code removal). Defaults to True.
        external_data (bool): Store the weights in a ``.data`` file next
            to the model instead of inside it (needed above 2 GB).
            Defaults to False.
        verbose (bool): Print the exporter's progress. Defaults to False.

    Returns:
        str: ``path``.

    Raises:
        StvitMMError: If the ONNX packages are missing.
    """
    dims = {0: 'batch', 2: 'height', 3: 'width'} if dynamic else {}
    return export_module(model, path, torch.randn(*example_size), dims,
                         input_name=INPUT_NAME,
                         output_names=_output_names(model), opset=opset,
                         optimize=optimize, external_data=external_data,
                         verbose=verbose)


def export_module(module: nn.Module,
                  path: str,
                  example: Tensor,
                  dynamic_dims: Dict[int, str],
                  input_name: str = 'input',
                  output_names: Optional[List[str]] = None,
                  opset: int = DEFAULT_OPSET,
                  optimize: bool = True,
                  external_data: bool = False,
                  verbose: bool = False) -> str:
    """Export any single-input module of this package to ONNX, e.g. one
    stage (:func:`export_backbone` is this with the image dimensions).

    Args:
        module (nn.Module): Exported in eval mode, restored afterwards.
        path (str): Where to write the ``.onnx`` file.
        example (Tensor): Example input the module is traced with.
        dynamic_dims (dict[int, str]): Name of each dynamic dimension of
            the input, by index (all of them at least 1).
        input_name (str): Name of the graph input. Defaults to 'input'.
        output_names (list[str], optional): Names of the graph outputs.
        opset, optimize, external_data, verbose: As in
            :func:`export_backbone`.

    Returns:
        str: ``path``.
    """
    _require('onnx')
    _require('onnxscript')
    dynamic_shapes = None
    if dynamic_dims:
        Dim = torch.export.Dim
        dynamic_shapes = ({i: Dim(name, min=1)
                           for i, name in dynamic_dims.items()}, )
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with _eval_mode(module), torch.no_grad(), _fast_fake_tensors():
        program = torch.onnx.export(
            module, (example, ),
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=[input_name],
            output_names=output_names,
            opset_version=opset,
            optimize=optimize,
            verbose=verbose)
    program.save(path, external_data=external_data)
    return path


def check_onnx(path: str,
               model: nn.Module,
               inputs: Sequence[Tensor],
               rtol: float = 1e-4,
               providers: Optional[Sequence[str]] = None
               ) -> List[Dict[str, object]]:
    """Check an exported backbone: ``onnx.checker``, then ONNX Runtime
    against the PyTorch model (eval mode, no autograd) on each input.

    Args:
        path (str): The ``.onnx`` file.
        model (nn.Module): The PyTorch module it was exported from.
        inputs (Sequence[Tensor]): Its inputs, e.g. (N, C, H, W) images of
            any sizes for a backbone.
        rtol (float): Largest allowed ``max|ort - torch| / max|torch|``,
            per output. Defaults to 1e-4.
        providers (Sequence[str], optional): ONNX Runtime execution
            providers. Defaults to ``['CPUExecutionProvider']``.

    Returns:
        list[dict]: Per input, ``shape`` and ``errors`` (one relative error
        per output).

    Raises:
        OnnxMismatchError: If an output's shape differs or its relative
            error exceeds ``rtol``; the message lists every input's errors.
    """
    onnx = _require('onnx')
    ort = _require('onnxruntime')
    onnx.checker.check_model(path, full_check=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(
        path, options,
        providers=list(providers or ['CPUExecutionProvider']))
    name = session.get_inputs()[0].name
    report, failures = [], []
    with _eval_mode(model), torch.no_grad():
        for image in inputs:
            expected = model(image)
            if isinstance(expected, Tensor):
                expected = (expected, )
            actual = session.run(None, {name: image.numpy()})
            shape = tuple(image.shape)
            errors = []
            for i, (a, e) in enumerate(zip(actual, expected)):
                if tuple(a.shape) != tuple(e.shape):
                    failures.append(f'{shape}: output {i} has shape '
                                    f'{tuple(a.shape)}, expected '
                                    f'{tuple(e.shape)}')
                    errors.append(float('inf'))
                    continue
                errors.append(relative_error(torch.from_numpy(a), e))
            if len(actual) != len(expected):
                failures.append(f'{shape}: {len(actual)} outputs, expected '
                                f'{len(expected)}')
            elif max(errors) > rtol:
                failures.append(f'{shape}: relative errors '
                                f'{_fmt(errors)} > {rtol:g}')
            report.append(dict(shape=shape, errors=errors))
    if failures:
        raise OnnxMismatchError(
            f'{path} differs from the PyTorch model: ' + '; '.join(failures))
    return report


def _fmt(errors: Sequence[float]) -> str:
    return '[' + ', '.join(f'{e:.1e}' for e in errors) + ']'
