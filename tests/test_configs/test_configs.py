"""Every config in configs/ loads, builds and trains/predicts one step; the
paper configs hold the released recipe, share it with their Swin baselines
through configs/_base_/ (neither inherits the other), and
configs/metafile.yml holds the paper's numbers for them.

The forward tests shrink the S/B backbones to a tiny variant (and the RoI
sampling of the detectors) so that 13 configs run in well under a minute on
2 CPU cores; the real-size backbones are built once each, without a forward.
Expected recipe values come from the released STViT-R detection config
(changsn/STViT-R-Object-Detection, configs/swin/cascade_mask_rcnn_swin_
{small,base}_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py)
and from mmseg's Swin UperNet recipe, written out here so that a change of
either the configs or an inherited stock config is caught.
"""
import ast
import copy
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.utils import get_installed_path

import stvit_mm  # noqa: F401  (registers STViTRSwin)
from helpers.paths import REPO
from stvit_mm.errors import ConfigError
from stvit_mm.utils.metafile import (BACKBONE_GFLOPS, load_metafile,
                                     paper_numbers)

CONFIG_DIR = REPO / 'configs'
ALL_CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in CONFIG_DIR.rglob('*.py')
    if '_base_' not in p.parts)

DET_MAIN = {
    'configs/cascade_stvit_r_swin_s_3x.py': 'S',
    'configs/cascade_stvit_r_swin_b_3x.py': 'B',
}
DET_BASELINES = {
    'configs/cascade_swin_s_3x.py': 'configs/cascade_stvit_r_swin_s_3x.py',
    'configs/cascade_swin_b_3x.py': 'configs/cascade_stvit_r_swin_b_3x.py',
}
SEG_MAIN = {
    'configs/upernet_stvit_r_swin_s_160k_ade20k.py': 'S',
    'configs/upernet_stvit_r_swin_b_160k_ade20k.py': 'B',
}
SEG_BASELINES = {
    'configs/upernet_swin_s_160k_ade20k.py':
    'configs/upernet_stvit_r_swin_s_160k_ade20k.py',
    'configs/upernet_swin_b_160k_ade20k.py':
    'configs/upernet_stvit_r_swin_b_160k_ade20k.py',
}
QUICKSTART_DET = 'configs/quickstart/stvit_r_swin_quickstart_coco.py'
QUICKSTART_SEG = 'configs/quickstart/stvit_r_swin_quickstart_ade.py'
DET_RECIPE = 'configs/_base_/recipes/cascade_mask_rcnn_3x_coco.py'
SEG_RECIPE = 'configs/_base_/recipes/upernet_160k_ade20k.py'
BACKBONE_BASE = 'configs/_base_/models/stvit_r_swin_s.py'
TINY_BACKBONE_BASE = 'configs/_base_/models/stvit_r_swin_t.py'
QUICKSTART_BASE = 'configs/_base_/quickstart.py'

SIZES = {
    'S': dict(embed_dims=96, num_heads=(3, 6, 12, 24), det_drop_path=0.2),
    'B': dict(embed_dims=128, num_heads=(4, 8, 16, 32), det_drop_path=0.3),
}
TINY_STVIT = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
TINY_SWIN = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8))
NO_DECAY_KEYS = ('absolute_pos_embed', 'relative_position_bias_table', 'norm')


def release_url(size):
    """The released ImageNet file of ``size`` on Hugging Face."""
    return ('https://huggingface.co/csncsn/STViT-R/resolve/main/'
            f'STViT-R-Swin-{size}.pth')


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    # The models here are tiny: one thread is about as fast on an idle
    # machine and several times faster on a busy one (OpenMP threads of
    # concurrent jobs oversubscribing the cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load(path: str) -> Config:
    return Config.fromfile(str(REPO / path))


def build_model(cfg: Config):
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    elif cfg.default_scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        # As the Runner does: the top-level preprocessor (mean, std,
        # num_classes for mixup/cutmix) goes into the model.
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    else:
        from mmseg.registry import MODELS
    return MODELS.build(cfg.model)


def widths(backbone_cfg) -> list:
    """Channels of the backbone outputs the config asks for."""
    return [
        backbone_cfg.embed_dims * 2**i
        for i in backbone_cfg.get('out_indices', (0, 1, 2, 3))
    ]


def shrink(cfg: Config) -> None:
    """Tiny backbone and few RoIs, for a fast CPU forward; the rest of the
    model stays as configured."""
    backbone = cfg.model.backbone
    if backbone.embed_dims > 32:
        backbone.update(TINY_STVIT if backbone.type == 'STViTRSwin' else
                        TINY_SWIN)
    backbone.init_cfg = None
    chans = widths(backbone)
    if cfg.default_scope == 'mmdet':
        cfg.model.neck.in_channels = chans
        train_cfg = cfg.model.train_cfg
        if 'rpn_proposal' in train_cfg:
            train_cfg.rpn_proposal.max_per_img = 64
            rcnn = train_cfg.rcnn
            for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
                stage.sampler.num = 32
            cfg.model.test_cfg.rpn.max_per_img = 32
    elif cfg.default_scope == 'mmpretrain':
        cfg.model.head.in_channels = chans[-1]
    else:
        all_chans = [backbone.embed_dims * 2**i for i in range(4)]
        head = cfg.model.decode_head
        head.in_channels = [all_chans[i] for i in head.in_index]
        aux = cfg.model.auxiliary_head
        aux.in_channels = all_chans[aux.in_index]
        cfg.model.data_preprocessor.size = (96, 128)


def det_batch(h: int = 96, w: int = 128) -> dict:
    """One image with two annotated objects, as PackDetInputs gives it."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
    boxes = torch.tensor([[10., 12., 60., 70.], [70., 20., 120., 90.]])
    masks = np.zeros((2, h, w), np.uint8)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        mask[y0:y1, x0:x1] = 1
        image[:, y0:y1, x0:x1] = 255  # something to find
    sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_path='tiny.jpg',
            img_shape=(h, w),
            ori_shape=(h, w),
            scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=boxes,
        labels=torch.tensor([0, 1]),
        masks=BitmapMasks(masks, h, w))
    return dict(inputs=[image], data_samples=[sample])


def seg_batch(h: int = 96, w: int = 128) -> dict:
    """Two images with label maps (incl. ignored pixels), as PackSegInputs
    gives them; two, because UperNet's 1x1 pooling branch has BN."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(2):
        inputs.append(
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                          generator=gen))
        label = torch.zeros((1, h, w), dtype=torch.long)
        label[:, 20:70, 30 + 10 * i:90] = 1 + i
        label[:, :5] = 255
        sample = SegDataSample(
            metainfo=dict(
                img_path=f'tiny{i}.jpg', img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def cls_batch(h: int = 96, w: int = 128) -> dict:
    """Two labelled images, as PackInputs gives them (two: mixup/cutmix
    mix a batch)."""
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                            generator=gen) for _ in range(2)]
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    return dict(inputs=inputs, data_samples=samples)


def batch_for(cfg: Config) -> dict:
    return dict(mmdet=det_batch, mmseg=seg_batch,
                mmpretrain=cls_batch)[cfg.default_scope]()


def fp32_optim_wrapper(cfg: Config):
    # AmpOptimWrapper asserts without a GPU; tools/train.py makes the same
    # substitution there.
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if not torch.cuda.is_available():
        optim_cfg.type = 'OptimWrapper'
        optim_cfg.pop('loss_scale', None)
    return optim_cfg


# ---------------------------------------------------------------------------
# Every config
# ---------------------------------------------------------------------------
def test_config_inventory():
    expected = {
        'configs/cascade_stvit_r_swin_s_3x.py',
        'configs/cascade_stvit_r_swin_b_3x.py',
        'configs/upernet_stvit_r_swin_s_160k_ade20k.py',
        'configs/upernet_stvit_r_swin_b_160k_ade20k.py',
        'configs/cascade_swin_s_3x.py', 'configs/cascade_swin_b_3x.py',
        'configs/upernet_swin_s_160k_ade20k.py',
        'configs/upernet_swin_b_160k_ade20k.py',
        'configs/examples/mask-rcnn_stvit-r-swin-t_fpn_1x_coco.py',
        'configs/examples/retinanet_stvit-r-swin-t_fpn_1x_coco.py',
        'configs/examples/upernet_stvit-r-swin-t_512x512_160k_ade20k.py',
        QUICKSTART_DET, QUICKSTART_SEG
    }
    assert expected <= set(ALL_CONFIGS)
    for base in (DET_RECIPE, SEG_RECIPE, BACKBONE_BASE, TINY_BACKBONE_BASE,
                 QUICKSTART_BASE):
        assert (REPO / base).is_file(), base
        assert base not in ALL_CONFIGS  # parts of configs, not configs


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_config_trains_and_predicts(path):
    """Build the model, take one optimizer step on a generated image, check
    the weights moved and the no-decay groups, then predict."""
    cfg = load(path)
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    assert cfg.custom_imports.imports == ['stvit_mm']
    shrink(cfg)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    model.train()

    optim_wrapper = build_optim_wrapper(model, fp32_optim_wrapper(cfg))
    # Swin-style recipes: no weight decay on norms and position tables.
    base_wd = cfg.optim_wrapper.optimizer.weight_decay
    paramwise = cfg.optim_wrapper.get('paramwise_cfg', {})
    custom_keys = paramwise.get('custom_keys', {})
    # mmpretrain's Swin recipe (as the release): no decay on any 1-D
    # parameter (norms, biases, layer scales) nor on the position tables.
    flat_no_decay = paramwise.get('flat_decay_mult', 1) == 0
    if custom_keys and not flat_no_decay:
        assert set(custom_keys) == set(NO_DECAY_KEYS)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            name = names[id(param)]
            no_decay = any(key.lstrip('.') in name for key in custom_keys)
            no_decay |= flat_no_decay and param.ndim == 1
            assert group['weight_decay'] == (0 if no_decay else base_wd), name

    batch = batch_for(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_vars = model.train_step(batch, optim_wrapper)
    assert math.isfinite(float(log_vars['loss'].detach()))
    moved = [
        n for n, p in model.named_parameters()
        if not torch.equal(before[n], p.detach())
    ]
    assert any(n.startswith('backbone.') for n in moved)
    assert any(not n.startswith('backbone.') for n in moved)

    model.eval()
    with torch.no_grad():
        batch = batch_for(cfg)
        result = model.test_step(batch)[0]
    if cfg.default_scope == 'mmdet':
        pred = result.pred_instances
        assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        if 'masks' in pred:
            assert tuple(pred.masks.shape) == (len(pred.bboxes), 96, 128)
    elif cfg.default_scope == 'mmpretrain':
        assert result.pred_score.shape == (cfg.model.head.num_classes, )
        assert torch.isclose(result.pred_score.sum(), torch.tensor(1.))
    else:
        assert tuple(result.pred_sem_seg.data.shape) == (1, 96, 128)
        num_classes = cfg.model.decode_head.num_classes
        assert int(result.pred_sem_seg.data.max()) < num_classes


MAIN_CONFIGS = [*DET_MAIN, *DET_BASELINES, *SEG_MAIN, *SEG_BASELINES]


@pytest.mark.parametrize('path', MAIN_CONFIGS)
def test_real_size_backbone_builds(path):
    """The S/B backbones as configured (no forward: too slow on CPU); their
    output norms match what the neck/heads expect."""
    cfg = load(path)
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    backbone_cfg.init_cfg = None
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
        expected = cfg.model.neck.in_channels
    else:
        from mmseg.registry import MODELS
        expected = cfg.model.decode_head.in_channels
        assert cfg.model.auxiliary_head.in_channels == expected[2]
    backbone = MODELS.build(backbone_cfg)
    got = [getattr(backbone, f'norm{i}').normalized_shape[0] for i in range(4)]
    assert got == list(expected)
    assert sum(p.numel() for p in backbone.parameters()) > 40e6


# ---------------------------------------------------------------------------
# The COCO recipe
# ---------------------------------------------------------------------------
STAGE_STDS = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
              [0.033, 0.033, 0.067, 0.067]]
DETR_SCALES = [(s, 1333) for s in range(480, 801, 32)]


def assert_cascade_recipe(cfg: Config) -> None:
    model = cfg.model
    assert model.type == 'CascadeRCNN'
    assert model.neck.type == 'FPN' and model.neck.out_channels == 256
    assert model.neck.num_outs == 5
    roi = model.roi_head
    assert roi.type == 'CascadeRoIHead' and roi.num_stages == 3
    assert roi.stage_loss_weights == [1, 0.5, 0.25]
    assert len(roi.bbox_head) == 3
    for head, stds in zip(roi.bbox_head, STAGE_STDS):
        # The release's ConvFCBBoxHead(4 shared convs, 1 shared fc).
        assert head.type in ('ConvFCBBoxHead', 'Shared4Conv1FCBBoxHead')
        if head.type == 'ConvFCBBoxHead':
            assert head.num_shared_convs == 4 and head.num_shared_fcs == 1
        assert head.conv_out_channels == 256 and head.fc_out_channels == 1024
        assert head.num_classes == 80
        assert head.reg_decoded_bbox is True
        assert head.reg_class_agnostic is False
        assert head.norm_cfg.type == 'SyncBN'
        assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
        assert head.loss_cls.type == 'CrossEntropyLoss'
        assert head.bbox_coder.target_stds == stds
    assert roi.mask_head.type == 'FCNMaskHead' and roi.mask_head.num_convs == 4
    ious = [s.assigner.pos_iou_thr for s in model.train_cfg.rcnn]
    assert ious == [0.5, 0.6, 0.7]
    assert model.test_cfg.rcnn.score_thr == 0.05
    assert model.test_cfg.rcnn.max_per_img == 100

    optim = cfg.optim_wrapper
    assert optim.type == 'AmpOptimWrapper'
    assert 'constructor' not in optim  # the template's ConvNeXt layer decay
    assert optim.optimizer == dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert optim.paramwise_cfg == dict(
        custom_keys={k: dict(decay_mult=0.)
                     for k in NO_DECAY_KEYS})

    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == 36
    warmup, steps = cfg.param_scheduler
    assert warmup == dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)
    assert steps.type == 'MultiStepLR' and steps.by_epoch
    assert steps.milestones == [27, 33] and steps.gamma == 0.1
    assert steps.end == 36

    # 2 images x 8 GPUs; --auto-scale-lr rescales from 16.
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)

    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t.type for t in pipeline]
    assert types == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomFlip', 'RandomChoice',
        'PackDetInputs'
    ]
    assert pipeline[1].with_mask and pipeline[2].prob == 0.5
    multi_scale, crop = pipeline[3].transforms
    assert [t.type for t in multi_scale] == ['RandomChoiceResize']
    assert [tuple(s) for s in multi_scale[0].scales] == DETR_SCALES
    assert [t.type for t in crop] == [
        'RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize'
    ]
    assert [tuple(s) for s in crop[0].scales] == [(400, 1333), (500, 1333),
                                                  (600, 1333)]
    assert crop[1].crop_type == 'absolute_range'
    assert tuple(crop[1].crop_size) == (384, 600)
    assert crop[1].allow_negative_crop is True
    assert [tuple(s) for s in crop[2].scales] == DETR_SCALES
    for t in (multi_scale[0], crop[0], crop[2]):
        assert t.keep_ratio is True

    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        resize = [t for t in loader.dataset.pipeline if t.type == 'Resize']
        assert len(resize) == 1 and tuple(resize[0].scale) == (1333, 800)
        assert resize[0].keep_ratio
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert model.data_preprocessor.pad_size_divisor == 32


@pytest.mark.parametrize('path,size', DET_MAIN.items())
def test_cascade_configs_hold_the_released_recipe(path, size):
    cfg = load(path)
    assert_cascade_recipe(cfg)
    backbone = cfg.model.backbone
    spec = SIZES[size]
    assert backbone.type == 'STViTRSwin'
    assert backbone.embed_dims == spec['embed_dims']
    assert tuple(backbone.depths) == (2, 2, 18, 2)
    assert tuple(backbone.num_heads) == spec['num_heads']
    assert backbone.drop_path_rate == spec['det_drop_path']
    assert backbone.window_size == 7
    assert backbone.sample_window_size == 3
    assert tuple(backbone.semantic_key_windows) == (14, 21)
    assert backbone.recovery_key_window == 27
    assert backbone.pad_mask == 'official'
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=release_url(size))
    c = spec['embed_dims']
    assert cfg.model.neck.in_channels == [c, 2 * c, 4 * c, 8 * c]


def _without_scope(node):
    # Inheriting through `mmdet::`/`mmseg::` tags every dict with `_scope_`.
    if isinstance(node, dict):
        return {
            k: _without_scope(v)
            for k, v in node.items() if k != '_scope_'
        }
    if isinstance(node, (list, tuple)):
        return type(node)(_without_scope(v) for v in node)
    return node


def recipe_without_backbone(cfg: Config) -> dict:
    """The config minus what a backbone swap may change: the backbone and
    the top-level variables that only it reads (its checkpoint; the
    arguments configs/_base_/models/stvit_r_swin_s.py lends)."""
    d = _without_scope(cfg.to_dict())
    for key in ('pretrained', 'checkpoint_file', 'stvit_r_swin_s',
                'stvit_r_swin_t'):
        d.pop(key, None)
    d['model'].pop('backbone')
    return d


@pytest.mark.parametrize('baseline,stvit',
                         [*DET_BASELINES.items(), *SEG_BASELINES.items()])
def test_baselines_share_the_recipe(baseline, stvit):
    base_cfg, stvit_cfg = load(baseline), load(stvit)
    assert recipe_without_backbone(base_cfg) == recipe_without_backbone(
        stvit_cfg)
    backbone = base_cfg.model.backbone
    assert backbone.type == 'SwinTransformer'
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.checkpoint.startswith('https://')
    assert list(backbone.depths) == [2, 2, 18, 2]
    assert backbone.embed_dims == stvit_cfg.model.backbone.embed_dims
    assert list(backbone.num_heads) == list(stvit_cfg.model.backbone.num_heads)
    assert backbone.drop_path_rate == stvit_cfg.model.backbone.drop_path_rate


def local_bases(path: str) -> list:
    """The repository files a config's `_base_` names, read from its source
    (bases in mmdet/mmseg, `pkg::...`, are left out)."""
    tree = ast.parse((REPO / path).read_text(encoding='utf-8'))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else list(bases)
            return [
                osp.normpath(osp.join(osp.dirname(path), base))
                for base in bases if '::' not in base
            ]
    return []


def inherited(path: str) -> set:
    """Every repository file a config inherits, directly or through its
    bases."""
    found, todo = set(), [path]
    while todo:
        for base in local_bases(todo.pop()):
            assert (REPO / base).is_file(), (path, base)
            if base not in found:
                found.add(base)
                todo.append(base)
    return found


PAPER_CONFIGS = [*DET_MAIN, *SEG_MAIN]
BASELINE_CONFIGS = [*DET_BASELINES, *SEG_BASELINES]


@pytest.mark.parametrize('path', [*PAPER_CONFIGS, *BASELINE_CONFIGS])
def test_configs_inherit_the_recipe_not_each_other(path):
    """A paper config and its Swin baseline both inherit the recipe; neither
    inherits the other (read from the `_base_` lines)."""
    chain = inherited(path)
    is_det = path in DET_MAIN or path in DET_BASELINES
    assert (DET_RECIPE if is_det else SEG_RECIPE) in chain
    assert (SEG_RECIPE if is_det else DET_RECIPE) not in chain
    is_paper = path in PAPER_CONFIGS
    others = BASELINE_CONFIGS if is_paper else PAPER_CONFIGS
    assert not chain & set(others), chain & set(others)
    # The STViT-R-Swin arguments come from one file, which no baseline reads.
    assert (BACKBONE_BASE in chain) == is_paper


@pytest.mark.parametrize('path', PAPER_CONFIGS)
def test_paper_configs_take_the_backbone_base(path):
    """The S configs' backbone is the base's, with the segmentation
    recipe's stochastic depth; B changes only its size and checkpoint."""
    cfg = load(path)
    shared = dict(cfg.stvit_r_swin_s)
    backbone = dict(cfg.model.backbone)
    if path in SEG_MAIN:
        shared['drop_path_rate'] = 0.3
    if 'swin_b' in path:
        for key in ('embed_dims', 'num_heads', 'drop_path_rate',
                    'init_cfg'):
            shared.pop(key)
            backbone.pop(key)
    assert backbone == shared


# ---------------------------------------------------------------------------
# The ADE20K recipe
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('path,size', SEG_MAIN.items())
def test_upernet_configs_hold_the_swin_recipe(path, size):
    cfg = load(path)
    model = cfg.model
    assert model.type == 'EncoderDecoder'
    assert model.decode_head.type == 'UPerHead'
    assert model.decode_head.num_classes == 150
    assert model.decode_head.channels == 512
    assert model.auxiliary_head.type == 'FCNHead'
    assert model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert tuple(model.data_preprocessor.size) == (512, 512)
    backbone = model.backbone
    assert backbone.type == 'STViTRSwin'
    assert backbone.embed_dims == SIZES[size]['embed_dims']
    assert tuple(backbone.num_heads) == SIZES[size]['num_heads']
    assert tuple(backbone.depths) == (2, 2, 18, 2)
    assert backbone.drop_path_rate == 0.3  # the Swin segmentation recipe
    assert backbone.init_cfg.checkpoint == release_url(size)

    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 160000
    optim = cfg.optim_wrapper
    assert optim.type == 'OptimWrapper'
    assert optim.optimizer == dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
    assert optim.paramwise_cfg == dict(
        custom_keys={k: dict(decay_mult=0.)
                     for k in NO_DECAY_KEYS})
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 1500
    assert not warmup.by_epoch
    assert poly.type == 'PolyLR' and poly.power == 1.0
    assert poly.eta_min == 0.0
    assert (poly.begin, poly.end) == (1500, 160000)

    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    crop = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'RandomCrop'
    ]
    assert tuple(crop[0].crop_size) == (512, 512)
    resize = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'RandomResize'
    ]
    assert tuple(resize[0].scale) == (2048, 512)
    assert tuple(resize[0].ratio_range) == (0.5, 2.0)

    # Multi-scale + flip TTA: (2048, 512) x 0.5..1.75, both flips.
    assert cfg.tta_model.type == 'SegTTAModel'
    tta = cfg.tta_pipeline[1]
    assert tta.type == 'TestTimeAug'
    scales = [tuple(t.scale) for t in tta.transforms[0]]
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert scales == [(int(2048 * r), int(512 * r)) for r in ratios]
    assert sorted(t.prob for t in tta.transforms[1]) == [0., 1.]


# ---------------------------------------------------------------------------
# Examples and quickstarts
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('path,stock', [
    ('configs/examples/mask-rcnn_stvit-r-swin-t_fpn_1x_coco.py',
     'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'),
    ('configs/examples/retinanet_stvit-r-swin-t_fpn_1x_coco.py',
     'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'),
    ('configs/examples/upernet_stvit-r-swin-t_512x512_160k_ade20k.py',
     'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_'
     'ade20k-512x512.py'),
])
def test_examples_swap_only_the_backbone(path, stock):
    package, rel = stock.split('::')
    stock_cfg = Config.fromfile(
        osp.join(get_installed_path(package), '.mim', 'configs', rel))
    cfg = load(path)
    assert cfg.model.backbone.type == 'STViTRSwin'
    assert tuple(cfg.model.backbone.depths) == (2, 2, 6, 2)
    mine, theirs = recipe_without_backbone(cfg), recipe_without_backbone(
        stock_cfg)
    mine.pop('custom_imports')
    theirs.pop('custom_imports', None)
    assert mine == theirs


def test_quickstart_configs_match_the_synthetic_data():
    from stvit_mm.datasets.synthetic import SHAPE_CLASSES, SHAPE_PALETTE
    det, seg = load(QUICKSTART_DET), load(QUICKSTART_SEG)
    for cfg in (det, seg):
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            dataset = cfg[loader].dataset
            assert tuple(dataset.metainfo.classes) == SHAPE_CLASSES
            assert [tuple(c) for c in dataset.metainfo.palette
                    ] == [tuple(c) for c in SHAPE_PALETTE]
        assert cfg.model.backbone.type == 'STViTRSwin'
        assert cfg.model.backbone.init_cfg is None
        assert cfg.optim_wrapper.type == 'OptimWrapper'
        assert 'SyncBN' not in str(cfg.model)
        assert cfg.train_cfg.type == 'IterBasedTrainLoop'
        max_iters = cfg.train_cfg.max_iters
        assert cfg.train_cfg.val_interval == max_iters
        assert cfg.default_hooks.checkpoint.interval == max_iters
        assert cfg.default_hooks.logger.interval == 10
        assert cfg.param_scheduler[-1].end == max_iters

    assert det.train_dataloader.dataset.data_root == 'data/synthetic_coco/'
    assert det.train_dataloader.dataset.ann_file == (
        'annotations/instances_train.json')
    assert det.train_dataloader.dataset.data_prefix.img == 'train/'
    assert det.val_dataloader.dataset.ann_file == (
        'annotations/instances_val.json')
    assert det.val_dataloader.dataset.data_prefix.img == 'val/'
    assert det.val_evaluator.ann_file == (
        'data/synthetic_coco/annotations/instances_val.json')
    assert all(h.num_classes == 4 for h in det.model.roi_head.bbox_head)
    assert det.model.roi_head.mask_head.num_classes == 4
    # The full recipe otherwise: heads, losses, optimizer.
    assert det.model.roi_head.stage_loss_weights == [1, 0.5, 0.25]
    assert all(h.loss_bbox.loss_weight == 10.0 and h.reg_decoded_bbox
               for h in det.model.roi_head.bbox_head)
    # The recipe's AdamW; a higher rate because nothing is pretrained.
    det_optim = det.optim_wrapper.optimizer
    assert det_optim.type == 'AdamW' and det_optim.weight_decay == 0.05
    assert det_optim.lr == 3e-4

    dataset = seg.train_dataloader.dataset
    assert dataset.data_root == 'data/synthetic_ade/'
    assert dataset.reduce_zero_label is True
    assert dataset.data_prefix == dict(
        img_path='images/training', seg_map_path='annotations/training')
    assert seg.model.decode_head.num_classes == 4
    assert seg.model.auxiliary_head.num_classes == 4
    seg_optim = seg.optim_wrapper.optimizer
    assert seg_optim.type == 'AdamW' and seg_optim.weight_decay == 0.01
    assert seg_optim.lr == 3e-4
    assert len(seg.tta_pipeline[1].transforms[0]) == 6


def test_paths_in_configs_are_relative_to_the_repo():
    """Pretrained and data paths are repo-relative, as the tools and the
    Makefile assume (they run from the repository root)."""
    for path in ALL_CONFIGS:
        cfg = load(path)
        init_cfg = cfg.model.backbone.get('init_cfg')
        if init_cfg and '://' not in init_cfg.checkpoint:
            assert not osp.isabs(init_cfg.checkpoint), path
            assert init_cfg.checkpoint.startswith('checkpoints/'), path
        assert not osp.isabs(cfg.train_dataloader.dataset.data_root), path


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_config_dumps_and_reloads(path, tmp_path):
    """The Runner dumps the config into the work dir; test.py, --resume and
    users reload that copy, so it must round-trip."""
    cfg = load(path)
    dumped = tmp_path / osp.basename(path)
    cfg.dump(str(dumped))
    assert Config.fromfile(str(dumped)).to_dict() == cfg.to_dict()


# ---------------------------------------------------------------------------
# The metafile: the paper's numbers per config
# ---------------------------------------------------------------------------
# CVPR 2023 (arXiv 2303.08685): Table 5 (COCO Cascade Mask R-CNN 3x, single
# scale; backbone GFLOPs at 800x1280) and Table 14 (ADE20K UperNet,
# multi-scale + flip; backbone GFLOPs at 512x512), as
# /work/shared/STVIT_R_FACTS.md gives them.
PAPER_NUMBERS = {
    'configs/cascade_stvit_r_swin_s_3x.py': {
        BACKBONE_GFLOPS: 134,
        'box AP': 51.8, 'box AP50': 70.6, 'box AP75': 56.1, 'box APs': 36.7,
        'mask AP': 44.7, 'mask AP50': 67.8, 'mask AP75': 48.6,
        'mask APs': 29.0
    },
    'configs/cascade_stvit_r_swin_b_3x.py': {
        BACKBONE_GFLOPS: 233,
        'box AP': 52.2, 'box AP50': 70.8, 'box AP75': 56.8, 'box APs': 36.5,
        'mask AP': 45.2, 'mask AP50': 68.3, 'mask AP75': 49.1,
        'mask APs': 29.5
    },
    'configs/cascade_swin_s_3x.py': {
        BACKBONE_GFLOPS: 194, 'box AP': 51.8, 'mask AP': 44.7
    },
    'configs/cascade_swin_b_3x.py': {
        BACKBONE_GFLOPS: 343, 'box AP': 51.9, 'mask AP': 45.0
    },
    'configs/upernet_stvit_r_swin_s_160k_ade20k.py': {
        BACKBONE_GFLOPS: 34, 'mIoU(ms+flip)': 48.3
    },
    'configs/upernet_stvit_r_swin_b_160k_ade20k.py': {
        BACKBONE_GFLOPS: 60, 'mIoU(ms+flip)': 48.9
    },
    'configs/upernet_swin_s_160k_ade20k.py': {
        BACKBONE_GFLOPS: 49, 'mIoU(ms+flip)': 49.3
    },
    'configs/upernet_swin_b_160k_ade20k.py': {
        BACKBONE_GFLOPS: 87, 'mIoU(ms+flip)': 49.7
    },
}
COCO_RELEASE = ('cascade_mask_rcnn_swin_{}_patch4_window7_mstrain_480-800_'
                'giou_4conv1f_adamw_3x_coco.pth')


#: The released ImageNet classifiers: their own top-1 and weights.
IMAGENET_RELEASE = {
    'configs/imagenet/stvit_r_swin_s_16xb64_in1k.py': ('S', 82.65),
    'configs/imagenet/stvit_r_swin_b_16xb64_in1k.py': ('B', 83.21),
}


def test_metafile_lists_the_paper_configs_and_baselines():
    assert set(load_metafile()) == set(PAPER_CONFIGS + BASELINE_CONFIGS +
                                       list(IMAGENET_RELEASE))
    assert set(PAPER_NUMBERS) == set(PAPER_CONFIGS + BASELINE_CONFIGS)


@pytest.mark.parametrize('path', [*PAPER_CONFIGS, *BASELINE_CONFIGS])
def test_metafile_entries_describe_their_configs(path):
    """Each listed config exists and loads, and its entry says what the
    config does: backbone, data, schedule, batch, weights."""
    entry = load_metafile()[path]
    assert (REPO / path).is_file()
    cfg = load(path)
    meta, weights = entry['Metadata'], entry['Weights']
    backbone = cfg.model.backbone
    size = {96: 'S', 128: 'B'}[backbone.embed_dims]
    is_stvit = backbone.type == 'STViTRSwin'
    assert entry['In Collection'] == ('STViT-R-Swin' if is_stvit else 'Swin')
    assert meta['Backbone'] == (
        f'STViT-R-Swin-{size}' if is_stvit else f'Swin-{size}')
    assert meta['Pretraining Data'] == 'ImageNet-1k'
    assert meta['Batch Size'] == cfg.train_dataloader.batch_size * 8
    if cfg.default_scope == 'mmdet':
        assert entry['Paper Table'] == 'Table 5'
        assert meta['Training Data'] == 'COCO'
        assert meta['Epochs'] == cfg.train_cfg.max_epochs
        assert meta['FLOPs Input Size'] == [800, 1280]
        tasks = [('Object Detection', 'COCO'),
                 ('Instance Segmentation', 'COCO')]
    else:
        assert entry['Paper Table'] == 'Table 14'
        assert meta['Training Data'] == 'ADE20K'
        assert meta['Iterations'] == cfg.train_cfg.max_iters
        assert meta['FLOPs Input Size'] == list(
            cfg.model.data_preprocessor.size)
        tasks = [('Semantic Segmentation', 'ADE20K')]
    assert [(r['Task'], r['Dataset']) for r in entry['Results']] == tasks
    if is_stvit:
        assert weights['Hugging Face'] == 'csncsn/STViT-R'
        assert weights['ImageNet-1k'] == backbone.init_cfg.checkpoint
        assert weights['ImageNet-1k'] == release_url(size)
        if cfg.default_scope == 'mmdet':
            assert weights['COCO'] == COCO_RELEASE.format(
                {'S': 'small', 'B': 'base'}[size])
        else:
            assert 'ADE20K' not in weights  # none were released
    else:
        assert weights == {'ImageNet-1k': backbone.init_cfg.checkpoint}


@pytest.mark.parametrize('path', [*PAPER_CONFIGS, *BASELINE_CONFIGS])
def test_metafile_holds_the_papers_numbers(path):
    assert paper_numbers(path) == PAPER_NUMBERS[path]


def test_paper_numbers_takes_any_path_to_a_config(monkeypatch):
    path = 'configs/upernet_swin_b_160k_ade20k.py'
    assert paper_numbers(REPO / path) == PAPER_NUMBERS[path]
    monkeypatch.chdir(REPO / 'configs')
    assert paper_numbers(osp.basename(path)) == PAPER_NUMBERS[path]
    with pytest.raises(ConfigError, match='not in the metafile'):
        paper_numbers(REPO / QUICKSTART_DET)


def test_load_metafile_refuses_what_is_not_a_metafile(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        load_metafile(tmp_path / 'missing.yml')
    bad = tmp_path / 'metafile.yml'
    bad.write_text('Collections: []\n')
    with pytest.raises(ConfigError, match='no `Models` list'):
        load_metafile(bad)
    bad.write_text('Models:\n  - Name: a\n')
    with pytest.raises(ConfigError, match='has no `Config`'):
        load_metafile(bad)
    bad.write_text('Models:\n  - Config: configs/a.py\n'
                   '  - Config: configs/a.py\n')
    with pytest.raises(ConfigError, match='listed twice'):
        load_metafile(bad)


@pytest.mark.parametrize('path', sorted(IMAGENET_RELEASE))
def test_metafile_holds_the_imagenet_release(path):
    size, top1 = IMAGENET_RELEASE[path]
    entry = load_metafile()[path]
    cfg = load(path)
    assert cfg.model.backbone.type == 'STViTRSwin'
    assert cfg.model.backbone.variant == 'imagenet'
    assert cfg.model.backbone.embed_dims == {'S': 96, 'B': 128}[size]
    meta = entry['Metadata']
    assert meta['Backbone'] == f'STViT-R-Swin-{size}'
    assert meta['Epochs'] == cfg.train_cfg.max_epochs
    assert meta['Batch Size'] == cfg.train_dataloader.batch_size * 16
    assert paper_numbers(path) == {'Top 1 Accuracy': top1}
    assert entry['Weights'] == ('https://huggingface.co/csncsn/STViT-R/'
                                f'resolve/main/STViT-R-Swin-{size}.pth')
