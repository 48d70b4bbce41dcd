"""Deployment: ONNX export of the backbone and its check in ONNX Runtime
(:mod:`.onnx_export`)."""
from .onnx_export import (DEFAULT_OPSET, OnnxMismatchError, check_onnx,
                          export_backbone, export_module, relative_error)

__all__ = ['export_backbone', 'export_module', 'check_onnx',
           'OnnxMismatchError', 'DEFAULT_OPSET', 'relative_error']
