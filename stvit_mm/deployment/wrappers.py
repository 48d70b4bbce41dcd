"""The graphs that are exported: a whole model from the loaded image to its
output, as one ``nn.Module`` with one tensor input.

The input is the image as the test pipeline hands it to the model (after
``Resize``; BGR, 0..255, as mmcv loads it) in a (N, 3, H, W) float batch:
the data preprocessor's channel conversion and normalisation are part of the
graph, so that a deployed model needs nothing but the resize (and, for a
classifier, the centre crop). Padding to a size divisor is not: both
backbones pad internally, mmseg's segmentor does not pad at test time, and
mmpretrain's ImageNet configs pad to a divisor of 1.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['Preprocess', 'SegmentorGraph', 'DetectorFeaturesGraph',
           'ClassifierGraph', 'random_image']

#: Where each library's data preprocessor keeps its BGR<->RGB flag: mmdet's
#: ``DetDataPreprocessor``, mmseg's ``SegDataPreProcessor``, mmpretrain's
#: ``ClsDataPreprocessor``.
_CHANNEL_FLAGS = ('_channel_conversion', 'channel_conversion', 'to_rgb')


class Preprocess(nn.Module):
    """A data preprocessor's BGR->RGB conversion and normalisation.

    Args:
        data_preprocessor (nn.Module): mmseg's ``SegDataPreProcessor``,
            mmdet's ``DetDataPreprocessor`` or mmpretrain's
            ``ClsDataPreprocessor`` (all keep ``mean``/``std`` as (3, 1, 1)
            buffers, ``_enable_normalize`` and a conversion flag, each under
            its own name: :data:`_CHANNEL_FLAGS`).
    """

    def __init__(self, data_preprocessor: nn.Module):
        super().__init__()
        self.flip_channels = any(
            bool(getattr(data_preprocessor, flag, False))
            for flag in _CHANNEL_FLAGS)
        self.normalize = bool(
            getattr(data_preprocessor, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', data_preprocessor.mean.clone())
            self.register_buffer('std', data_preprocessor.std.clone())

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) as loaded -> (N, 3, H, W) as the backbone takes it."""
        if self.flip_channels:
            images = images[:, [2, 1, 0]]
        if self.normalize:
            images = (images - self.mean) / self.std
        return images


class SegmentorGraph(nn.Module):
    """An mmseg ``EncoderDecoder`` (e.g. UperNet) in whole-image mode: the
    image to per-pixel class logits, or labels, at the input's resolution,
    as ``encode_decode`` computes them (mmdeploy's segmentation export).

    Args:
        segmentor (nn.Module): The segmentor, in eval mode.
        output (str): ``'logits'`` ((N, K, H, W) float) or ``'labels'``
            ((N, 1, H, W) int64, the arg max over classes).
    """

    def __init__(self, segmentor: nn.Module, output: str = 'logits'):
        super().__init__()
        if output not in ('logits', 'labels'):
            raise ValueError(f"output must be 'logits' or 'labels', got "
                             f'{output!r}')
        self.preprocess = Preprocess(segmentor.data_preprocessor)
        self.segmentor = segmentor
        self.output = output

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) image -> (N, K, H, W) logits or (N, 1, H, W)
        labels."""
        inputs = self.preprocess(images)
        features = self.segmentor.extract_feat(inputs)
        logits = self.segmentor.decode_head(features)
        logits = F.interpolate(
            logits,
            size=inputs.shape[2:],
            mode='bilinear',
            align_corners=self.segmentor.decode_head.align_corners)
        if self.output == 'labels':
            return logits.argmax(dim=1, keepdim=True)
        return logits


class DetectorFeaturesGraph(nn.Module):
    """An mmdet detector's backbone and neck: the image to its feature
    pyramid (e.g. FPN's five levels), the part of a two-stage detector that
    holds nearly all of its FLOPs and every one of the backbone's.

    Args:
        detector (nn.Module): The detector, in eval mode.
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.preprocess = Preprocess(detector.data_preprocessor)
        self.detector = detector

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) image -> tuple of (N, C, H_i, W_i) levels."""
        return tuple(self.detector.extract_feat(self.preprocess(images)))


class ClassifierGraph(nn.Module):
    """An mmpretrain ``ImageClassifier``: the image to class logits, as
    ``forward(mode='tensor')`` computes them (backbone, neck, head; the
    softmax of ``predict`` is left to the caller).

    Args:
        classifier (nn.Module): The classifier, in eval mode.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.preprocess = Preprocess(classifier.data_preprocessor)
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) image -> (N, K) logits."""
        features = self.classifier.extract_feat(self.preprocess(images))
        return self.classifier.head(features)


def random_image(shape, seed: int = 0) -> Tensor:
    """A reproducible (N, 3, H, W) float image in 0..255 to check exports
    with."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, tuple(shape), generator=generator).float()
