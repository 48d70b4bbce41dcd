# Swin-B + UperNet, ADE20K 512x512, 160k iterations: the baseline of
# upernet_stvit_r_swin_b_160k_ade20k.py. Same recipe as the Swin-S baseline
# (mmseg's swin-base-patch4-window7-in1k-pre config changes only the
# backbone size and its ImageNet weights).
# Paper (Table 14): Swin-B 49.7 mIoU multi-scale.
_base_ = './upernet_swin_s_160k_ade20k.py'

checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window7_224_20220317-e9b98025.pth'  # noqa: E501
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file),
        embed_dims=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32]),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=512, num_classes=150))
