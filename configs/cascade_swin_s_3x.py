# Swin-S + Cascade Mask R-CNN, COCO, 3x: the baseline of
# cascade_stvit_r_swin_s_3x.py. Both inherit the released recipe
# (_base_/recipes/cascade_mask_rcnn_3x_coco.py) and set only the backbone,
# here mmdet's SwinTransformer, so the two recipes are identical by
# construction (tests/test_configs/test_configs.py checks it).
# Swin-S in the paper: box 51.8, mask 44.7.
_base_ = './_base_/recipes/cascade_mask_rcnn_3x_coco.py'

# Official Swin ImageNet-1k release; mmdet converts its key layout
# (convert_weights=True).
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_small_patch4_window7_224.pth'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 18, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
