# STViT-R-Swin-B + UperNet, ADE20K 512x512, 160k iterations: the S config
# with the base-size backbone (the recipe is the same for both sizes, as in
# the Swin-B baseline upernet_swin_b_160k_ade20k.py).
# Paper (Table 14): 48.9 mIoU multi-scale, 60 GFLOPs backbone (Swin-B 87).
_base_ = './upernet_stvit_r_swin_s_160k_ade20k.py'

pretrained = 'https://huggingface.co/csncsn/STViT-R/resolve/main/STViT-R-Swin-B.pth'  # noqa: E501

model = dict(
    backbone=dict(
        embed_dims=128,
        num_heads=(4, 8, 16, 32),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
