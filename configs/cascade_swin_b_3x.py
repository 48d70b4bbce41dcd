# Swin-B + Cascade Mask R-CNN, COCO, 3x: the baseline of
# cascade_stvit_r_swin_b_3x.py (same recipe by construction: it inherits the
# Swin-S baseline, which inherits the recipe both sizes share).
# Swin-B in the paper: box 51.9, mask 45.0.
_base_ = './cascade_swin_s_3x.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window7_224.pth'  # noqa: E501

model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=[4, 8, 16, 32],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
