# STViT-R-Swin-B + Cascade Mask R-CNN, COCO, 3x schedule (36 epochs).
#
# The released base-size recipe (changsn/STViT-R-Object-Detection,
# configs/swin/cascade_mask_rcnn_swin_base_patch4_window7_mstrain_480-800_
# giou_4conv1f_adamw_3x_coco.py) differs from the small one only in the
# backbone width, heads and stochastic depth, so everything else is
# inherited from the S config.
# Paper (CVPR 2023, Table 5): box AP 52.2, mask AP 45.2 at 1333x800.
_base_ = './cascade_stvit_r_swin_s_3x.py'

# Converted ImageNet-1k release (STViT-R-Swin-B.pth), see
# tools/model_converters/stvit_r_official_to_mm.py.
pretrained = 'https://huggingface.co/csncsn/STViT-R/resolve/main/STViT-R-Swin-B.pth'  # noqa: E501

model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=(4, 8, 16, 32),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
