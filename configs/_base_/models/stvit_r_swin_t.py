# The STViT-R-Swin-T backbone (depths 2-2-6-2: stage 3 is one dumbbell unit
# of 6 blocks), for swapping into configs built for mmdet's/mmseg's Swin-T.
# No ImageNet weights were released for T (only S and B, see
# stvit_r_swin_s.py), so it starts from random weights; set init_cfg to a
# checkpoint of your own.
#
# As in stvit_r_swin_s.py it is a variable, not `model`. List this file
# beside your config's own base and replace its backbone:
#     _base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
#               '../_base_/models/stvit_r_swin_t.py']
#     model = dict(backbone=dict(_base_.stvit_r_swin_t, _delete_=True))
# Its channels per stage are 96, 192, 384, 768, as Swin-T's.
stvit_r_swin_t = dict(
    type='STViTRSwin',
    embed_dims=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    window_size=7,
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    init_cfg=None)
