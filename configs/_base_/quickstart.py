# What both quickstarts (../quickstart/) shrink the same way, listed beside
# the full config they start from:
# - the classes of the synthetic shapes set, in the order of
#   stvit_mm.datasets.synthetic.SHAPE_CLASSES, with its palette;
# - plain BN in the heads (one process, no SyncBN);
# - a small STViT-R-Swin (C=32, depths 2-2-6-2: one dumbbell unit in
#   stage 3) trained from scratch: no pretrained file is needed.
# Variables, not `model` or dataloaders: the full configs define those, and
# mmengine refuses two bases that define the same key. A quickstart reads
# them as `_base_.metainfo`, `_base_.quickstart_backbone`, ...
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'cross'),
    palette=[(230, 40, 40), (150, 230, 40), (40, 220, 220), (150, 40, 230)])
num_classes = 4
head_norm_cfg = dict(type='BN', requires_grad=True)
quickstart_backbone = dict(
    embed_dims=32,
    depths=(2, 2, 6, 2),
    num_heads=(1, 2, 4, 8),
    drop_path_rate=0.1,
    init_cfg=None)
# The Swin twin's backbone (mmdet's / mmseg's SwinTransformer, the same
# widths, depths, heads and stochastic depth; the Swin baselines' settings),
# for the side-by-side run (configs/quickstart/swin_quickstart_*.py).
quickstart_swin_backbone = dict(
    quickstart_backbone,
    type='SwinTransformer',
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    drop_rate=0.,
    attn_drop_rate=0.,
    patch_norm=True,
    out_indices=(0, 1, 2, 3))
