"""Dataset helpers. Only numpy and OpenCV are needed here, so the synthetic
data can be generated before (or without) the OpenMMLab stack is imported."""
from .synthetic import (ADE_METAINFO, ADE_METAINFO_WITH_BACKGROUND,
                        COCO_METAINFO, SHAPE_CLASSES, SHAPE_PALETTE,
                        generate_synthetic_dataset, is_complete)

__all__ = [
    'ADE_METAINFO', 'ADE_METAINFO_WITH_BACKGROUND', 'COCO_METAINFO',
    'SHAPE_CLASSES', 'SHAPE_PALETTE', 'generate_synthetic_dataset',
    'is_complete'
]
