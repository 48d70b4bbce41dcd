"""Dataset helpers. Only numpy and OpenCV are needed here, so the synthetic
data can be generated before (or without) the OpenMMLab stack is imported.

* ``scenes``: drawing the coloured-shapes scenes;
* ``coco_ade_format``: a scene as COCO instances or an ADE20K label map;
* ``synthetic``: generating a whole dataset, with its marker and manifest.
"""
from .coco_ade_format import (ADE_METAINFO, ADE_METAINFO_WITH_BACKGROUND,
                              COCO_METAINFO)
from .scenes import SHAPE_CLASSES, SHAPE_PALETTE
from .synthetic import (SyntheticDataError, generate_synthetic_dataset,
                        is_complete)

__all__ = [
    'ADE_METAINFO', 'ADE_METAINFO_WITH_BACKGROUND', 'COCO_METAINFO',
    'SHAPE_CLASSES', 'SHAPE_PALETTE', 'SyntheticDataError',
    'generate_synthetic_dataset', 'is_complete'
]
