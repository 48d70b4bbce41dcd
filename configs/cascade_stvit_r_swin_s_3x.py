# STViT-R-Swin-S + Cascade Mask R-CNN, COCO, 3x schedule (36 epochs): the
# released recipe (_base_/recipes/cascade_mask_rcnn_3x_coco.py) with the
# released backbone (_base_/models/stvit_r_swin_s.py), initialised from the
# ImageNet-1k release, read from its URL (see that file for offline use).
# Its baseline, cascade_swin_s_3x.py, inherits the same recipe.
# Paper (CVPR 2023, Table 5): box AP 51.8, mask AP 44.7 at 1333x800.
_base_ = [
    './_base_/recipes/cascade_mask_rcnn_3x_coco.py',
    './_base_/models/stvit_r_swin_s.py'
]

model = dict(
    backbone=dict(_base_.stvit_r_swin_s, _delete_=True),
    neck=dict(in_channels=[96, 192, 384, 768]))
