"""Tiny configs the tests train and test with.

* :func:`tiny_config_text`: the quickstart configs with smaller images
  (the ``tiny_configs`` fixture of ``tests/conftest.py`` writes them).
* :func:`tiny_retinanet_cfg`: a stock mmdet RetinaNet with an 8-channel
  ResNet-18, the fastest real detector for the Runner and the tools; it
  reads the train split of a synthetic COCO set
  (:func:`stvit_mm.datasets.generate_synthetic_dataset` with
  ``RETINA_DATA``; the ``retinanet_data_root`` fixture writes it).
"""
import copy
import os.path as osp

from mmengine.config import Config

IMG_SIZE = 64
BASE_LR = 0.01
WARMUP_START = 0.1
#: ``generate_synthetic_dataset('coco', root, **RETINA_DATA)`` writes the
#: data of :func:`tiny_retinanet_cfg`, which reads its train split (4
#: images; the test split is its first 2).
RETINA_DATA = dict(num_train=4, num_val=1, size=IMG_SIZE, seed=0)
RETINA_ANN_FILE = 'annotations/instances_train.json'
RETINA_IMG_DIR = 'train/'
#: Two of the synthetic set's four classes (the model has two): mmdet's
#: ``CocoDataset`` leaves the others out. Each of the 4 training images
#: holds one of these, so ``filter_empty_gt`` keeps them all.
RETINA_CLASSES = ('circle', 'triangle')

#: Image sizes of the tiny configs against the quickstart's: its detection
#: images are 256 px and the tests' 96 px; its segmentation pipeline scales
#: ADE20K's 512 px to 256 and the tests' to 64.
TINY_FACTORS = dict(det=96 / 256, seg=64 / 256)
#: The pipeline settings that are image sizes.
_SIZE_KEYS = ('scale', 'scales', 'crop_size')


def _shrunk(node, factor):
    """``node`` (pipelines: dicts, lists, tuples) as plain Python, with every
    image size multiplied by ``factor``."""
    if isinstance(node, dict):
        return {k: (_sizes(v, factor) if k in _SIZE_KEYS else
                    _shrunk(v, factor)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_shrunk(v, factor) for v in node)
    return node


def _sizes(value, factor):
    if isinstance(value, (int, float)):
        return max(1, round(value * factor))
    return type(value)(_sizes(v, factor) for v in value)


def tiny_config_text(base: str, task: str) -> str:
    """The quickstart config ``base`` with its pipelines shrunk by
    ``TINY_FACTORS[task]``, so that a few iterations take seconds; model,
    optimizer, hooks and the pipelines' steps stay the quickstart's.

    Returns:
        str: A config file's text that inherits ``base``.
    """
    cfg = Config.fromfile(base)
    factor = TINY_FACTORS[task]
    lines = [f'_base_ = {str(base)!r}']
    for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
        if name in cfg:
            lines.append(f'{name} = {_shrunk(cfg[name].copy(), factor)!r}')
    if task == 'seg':
        crop = _sizes(tuple(cfg.crop_size), factor)
        lines.append(f'model = dict(data_preprocessor=dict(size={crop!r}))')
    lines += ['train_dataloader = dict(dataset=dict(pipeline=train_pipeline))',
              'val_dataloader = dict(dataset=dict(pipeline=test_pipeline))',
              'test_dataloader = val_dataloader']
    return '\n'.join(lines) + '\n'


def tiny_retinanet_cfg(data_root, work_dir):
    """A stock mmdet RetinaNet with a ResNet-18 of 8 base channels, as an
    mmengine ``Config`` like ``tools/train.py`` builds."""
    dataset = dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file=RETINA_ANN_FILE,
        data_prefix=dict(img=RETINA_IMG_DIR),
        metainfo=dict(classes=RETINA_CLASSES),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(IMG_SIZE, IMG_SIZE), keep_ratio=True),
            dict(type='PackDetInputs')
        ])
    test_dataset = copy.deepcopy(dataset)
    test_dataset.update(test_mode=True, indices=2)
    test_dataset['pipeline'] = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(IMG_SIZE, IMG_SIZE), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor'))
    ]
    model = dict(
        type='RetinaNet',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[128., 128., 128.],
            std=[64., 64., 64.],
            bgr_to_rgb=True,
            pad_size_divisor=32),
        # ResNet-18 at 1/8 of its width.
        backbone=dict(type='ResNet', depth=18, base_channels=8,
                      stem_channels=8, out_indices=(0, 1, 2, 3),
                      norm_cfg=dict(type='BN', requires_grad=True),
                      norm_eval=False),
        neck=dict(
            type='FPN',
            in_channels=[8, 16, 32, 64],
            out_channels=16,
            start_level=1,
            add_extra_convs='on_input',
            num_outs=5),
        bbox_head=dict(
            type='RetinaHead',
            num_classes=2,
            in_channels=16,
            stacked_convs=1,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=4,
                scales_per_octave=1,
                ratios=[1.0],
                strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=dict(
            nms_pre=50,
            min_bbox_size=0,
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=10))
    return Config(
        dict(
            default_scope='mmdet',
            work_dir=work_dir,
            model=model,
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dataset),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=2),
            optim_wrapper=dict(
                type='OptimWrapper',
                optimizer=dict(
                    type='SGD', lr=BASE_LR, momentum=0.9, weight_decay=1e-4)),
            param_scheduler=[
                dict(
                    type='LinearLR',
                    start_factor=WARMUP_START,
                    by_epoch=False,
                    begin=0,
                    end=10)
            ],
            test_dataloader=dict(
                batch_size=1,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=test_dataset),
            test_cfg=dict(type='TestLoop'),
            test_evaluator=dict(
                type='CocoMetric',
                ann_file=osp.join(data_root, RETINA_ANN_FILE),
                metric='bbox'),
            default_hooks=dict(
                checkpoint=dict(
                    type='CheckpointHook', interval=2, by_epoch=False),
                logger=dict(type='LoggerHook', interval=1)),
            log_processor=dict(by_epoch=False),
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            randomness=dict(seed=0),
            log_level='WARNING'))
