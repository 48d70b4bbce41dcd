"""Deployment: ONNX export of the backbone, of whole segmentors and
classifiers and of detectors' feature pyramids (:mod:`.model_export`),
checked and run in ONNX Runtime (:mod:`.ort_runtime`, :mod:`.ort_eval`,
:mod:`.onnx_inference`)."""
from .model_export import (WHATS, ExportReport, build_export_subject,
                           export_config, format_report)
from .onnx_export import (DEFAULT_OPSET, OnnxMismatchError, check_onnx,
                          export_backbone, export_module, relative_error)
from .onnx_inference import onnx_image_demo
from .ort_eval import evaluate_segmentor_onnx
from .ort_runtime import OrtModel, load_test_image

__all__ = [
    'export_backbone', 'export_module', 'check_onnx', 'OnnxMismatchError',
    'DEFAULT_OPSET', 'relative_error', 'WHATS', 'ExportReport',
    'build_export_subject', 'export_config', 'format_report',
    'onnx_image_demo', 'evaluate_segmentor_onnx', 'OrtModel',
    'load_test_image'
]
