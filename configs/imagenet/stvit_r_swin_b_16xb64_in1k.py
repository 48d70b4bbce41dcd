# STViT-R-Swin-B, the released ImageNet-1k classifier (changsn/STViT-R:
# configs/swin_base_patch4_window7_224.yaml) and its recipe: the S config
# (./stvit_r_swin_s_16xb64_in1k.py) with the B widths and drop path 0.4.
# Released: 83.21 top-1 (log/base.txt). Evaluate the released weights:
#     python tools/model_converters/stvit_r_official_to_mm.py \
#         STViT-R-Swin-B.pth checkpoints/stvit_r_swin_b_in1k_cls.pth \
#         --classifier --config configs/imagenet/stvit_r_swin_b_16xb64_in1k.py
#     python tools/test.py configs/imagenet/stvit_r_swin_b_16xb64_in1k.py \
#         checkpoints/stvit_r_swin_b_in1k_cls.pth
_base_ = './stvit_r_swin_s_16xb64_in1k.py'

model = dict(
    backbone=dict(
        embed_dims=128, num_heads=(4, 8, 16, 32), drop_path_rate=0.4),
    head=dict(in_channels=1024))
