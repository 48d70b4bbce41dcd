# Quickstart: the STViT-R-Swin-S Cascade Mask R-CNN recipe
# (../cascade_stvit_r_swin_s_3x.py) shrunk until it trains on 2 CPU cores in
# minutes, on the synthetic shapes set (`make demo` writes
# data/synthetic_coco/; see stvit_mm/datasets/synthetic.py).
#
# What shrinks, and why:
# - a small STViT-R-Swin (C=32, depths 2-2-6-2: one dumbbell unit in stage 3)
#   trained from scratch: no pretrained file is needed
#   (../_base_/quickstart.py, shared with the ADE20K quickstart, as are the
#   classes and BN);
# - 64 FPN/head channels instead of 256, 128 sampled RoIs per image and
#   stage instead of 512, and 300 RPN proposals per image instead of 2000
#   (the 4-conv RoI heads of the three stages dominate the CPU time; the
#   shapes images hold at most 4 objects);
# - 256-pixel images, with the DETR-style augmentation scaled by 256/800;
# - 4 classes; plain BN in the heads (one process, no SyncBN) and plain
#   OptimWrapper (AMP needs a GPU);
# - an iteration-based schedule with the same shape (warm-up, two steps at
#   75% and 92%): 500 iterations of 2 images (about 3 passes over the 300
#   generated images), logging every 10 iterations, one checkpoint at the
#   end;
# - AdamW at 3e-4 instead of 1e-4: the weights start from scratch and see
#   1000 images, not ImageNet and 36 COCO epochs.
# Everything else (cascade stages, GIoU x10, decoded-box regression,
# AdamW betas/weight decay, no decay on norms/position tables) is the full
# recipe.
_base_ = ['../cascade_stvit_r_swin_s_3x.py', '../_base_/quickstart.py']

data_root = 'data/synthetic_coco/'
# Category ids 1..4 are the classes of _base_.metainfo, in order.
channels = 64

model = dict(
    backbone=_base_.quickstart_backbone,
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        mask_roi_extractor=dict(out_channels=channels),
        # The recipe's three cascade heads, narrower, with BN and 4 classes;
        # only target_stds tighten from stage to stage.
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=channels,
                conv_out_channels=channels,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=_base_.num_classes,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=_base_.head_norm_cfg,
                loss_cls=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_head=dict(
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=_base_.num_classes)),
    # The recipe's assigners (IoU 0.5/0.6/0.7), with 128 RoIs sampled per
    # image and stage instead of 512.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=300),
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    match_low_quality=False,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=128,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

# The 3x recipe's two augmentation branches, scaled by 256/800.
train_scales = [(427, 160), (427, 192), (427, 224), (427, 256)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=train_scales,
                    keep_ratio=True)
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(427, 128), (427, 160), (427, 192)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(123, 192),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=train_scales,
                    keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(427, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        train_dataloader['dataset'],
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# CocoMetric reads the ground truth itself; its path is not derived from the
# dataset's data_root, so it is set here too.
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_iters = 500
warmup_iters = 50
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[int(max_iters * 0.75), int(max_iters * 0.92)],
        gamma=0.1)
]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=3e-4))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
