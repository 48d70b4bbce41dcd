# Swap example: mmseg's stock Swin-T UperNet ADE20K config with its backbone
# replaced by STViT-R-Swin-T; heads, data and schedule are the stock ones.
#
# No ImageNet STViT-R-Swin-T weights were released (only S and B), so the
# backbone starts from random weights; point init_cfg at your own converted
# checkpoint if you have one.
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',  # noqa: E501
    '../_base_/models/stvit_r_swin_t.py'
]

custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_base_.stvit_r_swin_t, _delete_=True, drop_path_rate=0.3),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
