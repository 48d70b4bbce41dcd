# Swin-S + UperNet, ADE20K 512x512, 160k iterations: the baseline of
# upernet_stvit_r_swin_s_160k_ade20k.py. Both inherit the Swin segmentation
# recipe (_base_/recipes/upernet_160k_ade20k.py), whose backbone is mmseg's
# Swin-S with its ImageNet-1k weights, so this config is the recipe as it
# stands.
# Paper (Table 14): Swin-S 49.3 mIoU multi-scale.
_base_ = './_base_/recipes/upernet_160k_ade20k.py'
