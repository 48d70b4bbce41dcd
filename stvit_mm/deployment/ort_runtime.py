"""Running exported graphs in ONNX Runtime: one session type for the
tools, the evaluation and the benchmark, and the config's test pipeline
for one image."""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError
from .onnx_export import _require

__all__ = ['OrtModel', 'load_test_image']


class OrtModel:
    """An ONNX Runtime CPU session of an exported graph with one input.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): Intra-op threads (ONNX Runtime's default,
            all cores, when None).
        providers (Sequence[str], optional): Execution providers. Defaults
            to ``['CPUExecutionProvider']``.

    Raises:
        InputError: If the file is missing or ONNX Runtime cannot load it.
    """

    def __init__(self, path: str, threads: Optional[int] = None,
                 providers: Optional[Sequence[str]] = None):
        ort = _require('onnxruntime')
        if not osp.isfile(path):
            raise InputError(f'ONNX file not found: {path}')
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                path, options,
                providers=list(providers or ['CPUExecutionProvider']))
        except Exception as e:  # onnxruntime's own error types
            raise InputError(f'ONNX Runtime cannot load {path}: {e}') from e
        self.path = path
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images) -> List[np.ndarray]:
        """Run the graph on an (N, 3, H, W) float32 array or tensor."""
        if isinstance(images, torch.Tensor):
            images = images.detach().cpu().numpy()
        return self.session.run(
            None, {self.input_name: np.ascontiguousarray(images, np.float32)})


def load_test_image(cfg, image: str) -> dict:
    """Load one image through the config's test pipeline (its
    ``LoadAnnotations`` left out), as the libraries' inference APIs do.

    Args:
        cfg (Config): The model's config.
        image (str): Path of the image.

    Returns:
        dict: The packed sample: ``inputs`` (3, H, W) uint8 tensor (BGR, as
        resized by the pipeline) and ``data_samples``.

    Raises:
        InputError: If the image is missing or unreadable.
    """
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope

    from ..apis.inference import read_image
    read_image(image)  # names a missing or unreadable file
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    steps = [t for t in pipeline if 'LoadAnnotations' not in t['type']]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        sample = Compose(steps)(dict(img_path=image))
    if sample is None:
        raise InputError(f'{image}: the test pipeline dropped the image')
    return sample
