# STViT-R-Swin-S, the released ImageNet-1k classifier (changsn/STViT-R:
# configs/swin_small_patch4_window7_224.yaml over config.py's defaults, built
# by models/build.py), and its pretraining recipe. Released: 82.65 top-1
# (log/small.txt). Evaluate the released weights:
#     python tools/model_converters/stvit_r_official_to_mm.py \
#         STViT-R-Swin-S.pth checkpoints/stvit_r_swin_s_in1k_cls.pth \
#         --classifier --config configs/imagenet/stvit_r_swin_s_16xb64_in1k.py
#     python tools/test.py configs/imagenet/stvit_r_swin_s_16xb64_in1k.py \
#         checkpoints/stvit_r_swin_s_in1k_cls.pth
#
# The model: the detection backbone's stem and Swin stages with the released
# classifier's stage 3 (variant='imagenet': USE_GLOBAL=False,
# SHORTCUT=False, RELATIVE_POS=False, s=3, no layer scale in the Swin
# blocks), then the final LayerNorm (norm3, the release's `norm`), average
# pooling and a linear head (the release's `head`).
#
# The recipe (release logs; mmpretrain's Swin recipe is the same one):
# 300 epochs, 20 of linear warm-up (from lr x 1e-3), cosine to 1e-5; AdamW
# lr 1e-3 for a total batch of 1024 (5e-4 per 512; 16 GPUs x 64), betas
# (0.9, 0.999), wd 0.05 except on norms, biases, layer scales and position
# tables; gradient clipping at norm 5; drop path 0.3; RandAugment
# rand-m9-mstd0.5-inc1, mixup 0.8, cutmix 1.0 (one of them per batch),
# random erasing 0.25, label smoothing 0.1; 224 px, bicubic; test: resize
# the short side to 256, centre crop 224. The release trained with AMP.
_base_ = [
    'mmpretrain::_base_/models/swin_transformer/small_224.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/stvit_r_swin_s.py',
]

model = dict(
    backbone=dict(
        _base_.stvit_r_swin_s,
        _delete_=True,
        variant='imagenet',
        out_indices=(3, ),  # norm3 is the classifier's final norm
        drop_path_rate=0.3,
        init_cfg=None),
    head=dict(in_channels=768))

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)
