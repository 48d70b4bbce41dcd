# Quickstart: the STViT-R-Swin-S UperNet ADE20K recipe
# (../upernet_stvit_r_swin_s_160k_ade20k.py) shrunk until it trains on 2 CPU
# cores in minutes, on the synthetic shapes set in the ADE20K layout
# (`make demo-seg` writes data/synthetic_ade/; see
# stvit_mm/datasets/synthetic.py).
#
# What shrinks, and why:
# - a small STViT-R-Swin (C=32, depths 2-2-6-2) trained from scratch: no
#   pretrained file is needed (../_base_/quickstart.py, shared with the
#   COCO quickstart, as are the classes and BN);
# - 64 head channels instead of 512 (UperNet's 3x3 fusion conv at 1/4
#   resolution dominates the CPU time at 512);
# - 256x256 crops of 256-pixel images (scale range and TTA ratios kept);
# - 4 classes; label 0 ("background") is ignored through reduce_zero_label,
#   as ADE20K's "other"; plain BN in the heads (one process, no SyncBN);
# - 800 iterations of 2 images (about 5 passes over the 300 generated
#   images) with the same schedule shape (linear warm-up, then poly decay),
#   logging every 10 iterations, one checkpoint at the end;
# - AdamW at 3e-4 instead of 6e-5: the weights start from scratch and see
#   1600 crops, not ImageNet and 160k ADE20K iterations.
# The rest of the optimizer (AdamW betas, wd 0.01, no decay on
# norms/position tables) is the full recipe.
_base_ = [
    '../upernet_stvit_r_swin_s_160k_ade20k.py', '../_base_/quickstart.py'
]

data_root = 'data/synthetic_ade/'
crop_size = (256, 256)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=_base_.quickstart_backbone,
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        channels=64,
        num_classes=_base_.num_classes,
        norm_cfg=_base_.head_norm_cfg),
    auxiliary_head=dict(
        in_channels=128,
        channels=32,
        num_classes=_base_.num_classes,
        norm_cfg=_base_.head_norm_cfg))

# ADE20K's pipelines with (2048, 512) scaled to (1024, 256).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(1024, 256),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 256), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
# The recipe's multi-scale + flip test, its scales halved the same way.
tta_pipeline = _base_.tta_pipeline
tta_pipeline[1].transforms[0] = [
    dict(type='Resize', scale=(int(1024 * r), int(256 * r)), keep_ratio=True)
    for r in _base_.img_ratios
]

# BaseSegDataset rather than ADE20KDataset: mmseg only lets a dataset's
# classes be renamed to a subset of its built-in 150. Label k + 1 in the png
# maps to class k of _base_.metainfo after reduce_zero_label.
dataset_cfg = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=_base_.metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    dataset=dict(
        **dataset_cfg,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        **dataset_cfg,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 800
warmup_iters = 50
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=max_iters,
        by_epoch=False)
]

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
