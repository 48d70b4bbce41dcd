"""Registration of stvit_mm modules into the OpenMMLab libraries' registries.

Configs refer to the backbone by a bare ``type='STViTRSwin'`` under
``default_scope='mmdet'`` or ``'mmseg'``, or through mmpretrain. A child
registry only searches itself and its parents, never its siblings, so the
class is registered into each library's ``MODELS`` explicitly.
"""
from mmdet.registry import MODELS as MMDET_MODELS
# mmpretrain.registry imports without torchvision (mmpretrain.models does not).
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

MODEL_REGISTRIES = (MMDET_MODELS, MMSEG_MODELS, MMPRETRAIN_MODELS)


def register_model(cls):
    """Class decorator: register ``cls`` in the mmdet, mmseg and mmpretrain
    ``MODELS`` registries under its class name.

    Args:
        cls (type): The module class.

    Returns:
        type: ``cls`` itself.
    """
    for registry in MODEL_REGISTRIES:
        registry.register_module(module=cls)
    return cls
