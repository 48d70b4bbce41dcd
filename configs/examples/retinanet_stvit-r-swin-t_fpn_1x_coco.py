# Swap example: mmdet's stock Swin-T RetinaNet 1x config with its backbone
# replaced by STViT-R-Swin-T. Like the stock config it feeds only stages
# 2-4 (strides 8/16/32) to the FPN.
#
# No ImageNet STViT-R-Swin-T weights were released (only S and B), so the
# backbone starts from random weights; point init_cfg at your own converted
# checkpoint if you have one.
_base_ = 'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTRSwin',
        embed_dims=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[192, 384, 768]))
