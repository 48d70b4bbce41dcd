# STViT-R-Swin-S + UperNet, ADE20K 512x512, 160k iterations.
#
# The paper released no segmentation config; it follows the Swin recipe, so
# this inherits the Swin-S baseline (upernet_swin_s_160k_ade20k.py: mmseg's
# Swin UperNet recipe plus the multi-scale flip TTA) and swaps only the
# backbone. Stochastic depth stays at the Swin segmentation recipe's 0.3.
# Paper (Table 14): 48.3 mIoU multi-scale (`tools/test.py --tta`),
# 34 GFLOPs backbone at 512x512 (Swin-S 49).
_base_ = './upernet_swin_s_160k_ade20k.py'

# Converted ImageNet-1k release (STViT-R-Swin-S.pth), see
# tools/model_converters/stvit_r_official_to_mm.py.
pretrained = 'checkpoints/stvit_r_swin_s_in1k_mm.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTRSwin',
        embed_dims=96,
        depths=(2, 2, 18, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        with_cp=False,
        norm_cfg=dict(type='LN'),
        sample_window_size=3,
        semantic_key_windows=(14, 21),
        recovery_key_window=27,
        pad_mask='official',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
