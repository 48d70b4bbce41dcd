# The STViT-R-Swin-S backbone as the released detector builds it
# (changsn/STViT-R-Object-Detection: configs/swin/cascade_mask_rcnn_swin_
# small_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py over
# the defaults of mmdet/models/backbones/swin_transformer.py), initialised
# from the released ImageNet-1k classifier, read as released from its URL
# (downloaded once into torch's hub cache). Offline, point it at a local
# copy, as released or converted by
# tools/model_converters/stvit_r_official_to_mm.py:
#     --cfg-options model.backbone.init_cfg.checkpoint=/path/to/STViT-R-Swin-S.pth
#
# It is a variable, not `model`: mmengine refuses two bases that define the
# same key, and the recipes (../recipes/) define `model`. A config lists
# this file beside a recipe and replaces the recipe's backbone:
#     model = dict(backbone=dict(_base_.stvit_r_swin_s, _delete_=True))
# The B size changes embed_dims, num_heads, drop_path_rate and the
# checkpoint (../../cascade_stvit_r_swin_b_3x.py).

pretrained = 'https://huggingface.co/csncsn/STViT-R/resolve/main/STViT-R-Swin-S.pth'  # noqa: E501

# Each argument with its name in the release. Fixed there and here:
# ape=False, patch_norm=True, relative_pos=False,
# multi_scale='multi_scale_semantic_token1'.
stvit_r_swin_s = dict(
    type='STViTRSwin',
    embed_dims=96,  # embed_dim
    depths=(2, 2, 18, 2),  # depths; stage 3 = 3 dumbbell units of 6 blocks
    num_heads=(3, 6, 12, 24),  # num_heads
    window_size=7,  # window_size
    mlp_ratio=4,  # mlp_ratio
    qkv_bias=True,  # qkv_bias (qk_scale=None)
    drop_rate=0.,  # drop_rate
    attn_drop_rate=0.,  # attn_drop_rate
    drop_path_rate=0.2,  # drop_path_rate (detection; ADE20K uses 0.3)
    out_indices=(0, 1, 2, 3),  # out_indices
    frozen_stages=-1,  # frozen_stages
    with_cp=False,  # use_checkpoint
    norm_cfg=dict(type='LN'),  # norm_layer=nn.LayerNorm
    sample_window_size=3,  # window_sample_size
    semantic_key_windows=(14, 21),  # k_window_size_1, k_window_size_2
    recovery_key_window=27,  # restore_k_window_size
    pad_mask='official',  # pad_mask=True, with the release's quirk
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
