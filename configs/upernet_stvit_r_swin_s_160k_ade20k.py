# STViT-R-Swin-S + UperNet, ADE20K 512x512, 160k iterations: the Swin
# segmentation recipe (_base_/recipes/upernet_160k_ade20k.py; the paper
# released no segmentation config) with the released backbone
# (_base_/models/stvit_r_swin_s.py), initialised from the converted
# ImageNet-1k release. Stochastic depth stays at the Swin segmentation
# recipe's 0.3. Its baseline, upernet_swin_s_160k_ade20k.py, inherits the
# same recipe.
# Paper (Table 14): 48.3 mIoU multi-scale (`tools/test.py --tta`),
# 34 GFLOPs backbone at 512x512 (Swin-S 49).
_base_ = [
    './_base_/recipes/upernet_160k_ade20k.py',
    './_base_/models/stvit_r_swin_s.py'
]

model = dict(
    backbone=dict(_base_.stvit_r_swin_s, _delete_=True, drop_path_rate=0.3),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
