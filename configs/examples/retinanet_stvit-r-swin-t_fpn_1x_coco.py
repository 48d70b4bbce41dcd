# Swap example: mmdet's stock Swin-T RetinaNet 1x config with its backbone
# replaced by STViT-R-Swin-T. Like the stock config it feeds only stages
# 2-4 (strides 8/16/32) to the FPN.
#
# No ImageNet STViT-R-Swin-T weights were released (only S and B), so the
# backbone starts from random weights; point init_cfg at your own converted
# checkpoint if you have one.
_base_ = [
    'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
    '../_base_/models/stvit_r_swin_t.py'
]

custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _base_.stvit_r_swin_t, _delete_=True, out_indices=(1, 2, 3)),
    neck=dict(in_channels=[192, 384, 768]))
