# Quickstart Swin twin of stvit_r_swin_quickstart_coco.py, for the side-by-side
# run on generated data (`make compare`, stvit_mm/apis/compare.py): the same
# recipe, data, schedule and (through the compare's --cfg-options) seed; only
# the backbone differs. It is mmdet's SwinTransformer with the quickstart
# STViT-R-Swin's widths, depths, heads and stochastic depth
# (../_base_/quickstart.py: quickstart_swin_backbone), window 7 and the full Swin
# baseline's settings (../cascade_swin_s_3x.py), trained from scratch like
# its twin. Both have 32/64/128/256-channel outputs, so the neck is shared.
_base_ = './stvit_r_swin_quickstart_coco.py'

model = dict(
    backbone=dict(_base_.quickstart_swin_backbone, _delete_=True))
