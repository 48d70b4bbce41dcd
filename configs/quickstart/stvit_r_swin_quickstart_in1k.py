# Quickstart: the STViT-R-Swin-S ImageNet recipe
# (../imagenet/stvit_r_swin_s_16xb64_in1k.py, the released classifier)
# shrunk until it trains on 2 CPU cores in minutes, on the synthetic shapes
# set in the ImageNet layout (`make demo-cls` writes data/synthetic_imagenet/:
# one shape per 112-pixel image, 4 classes, coloured as in the other
# quickstarts' sets (usually near the class's hue); see
# stvit_mm/datasets/synthetic.py).
#
# What shrinks, and why:
# - a small STViT-R-Swin (C=32, depths 2-2-6-2, the quickstarts' backbone
#   from ../_base_/quickstart.py) in the released ImageNet variant, trained
#   from scratch;
# - 112 px instead of 224 (a quarter of the tokens: about 1 s instead of 3
#   per iteration on one busy core); stage 3 is then one 7x7 window, whose
#   key neighbourhood is the whole window;
# - 4 classes; iteration-based: 300 iterations of 16 images (about 16
#   passes over the 300 generated images), linear warm-up then cosine;
# - no mixup/cutmix, no RandAugment and no random erasing: they pay off over
#   300 ImageNet epochs, not 300 iterations; the random resized crop keeps
#   at least half of the image so that the shape stays in view. Label
#   smoothing, AdamW (betas, wd 0.05 except norms/biases/position tables)
#   and gradient clipping are the recipe's;
# - lr 1e-3 for the batch of 16 (the recipe's per-image rate would be
#   1.6e-5): the weights start from scratch and see 4800 crops. The test
#   transform is the recipe's at half size (short side 128, centre crop
#   112, bicubic).
_base_ = [
    '../imagenet/stvit_r_swin_s_16xb64_in1k.py', '../_base_/quickstart.py'
]

data_root = 'data/synthetic_imagenet/'

model = dict(
    backbone=_base_.quickstart_backbone,
    head=dict(in_channels=256, num_classes=_base_.num_classes),
    train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=_base_.num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=112,
        crop_ratio_range=(0.5, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=128,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=112),
    dict(type='PackInputs'),
]
dataset_cfg = dict(
    type='ImageNet', data_root=data_root, metainfo=_base_.metainfo)
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(**dataset_cfg, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(**dataset_cfg, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_iters = 300
warmup_iters = 30
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters)
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
