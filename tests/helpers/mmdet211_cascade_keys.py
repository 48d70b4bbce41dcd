"""Non-backbone state_dict keys/shapes of the released STViT-R COCO detector.

Derived by reading mmdet 2.11.0 SOURCE (not any mmdet 3.x config):
  * mmdet 2.11.0 as vendored in changsn/STViT-R-Object-Detection@8b8eb1e
    (mmdet/version.py: __version__ = '2.11.0'); every file cited below is
    byte-identical to
    SwinTransformer/Swin-Transformer-Object-Detection@c7b20110
    (also '2.11.0').  Upstream open-mmlab/mmdetection tag v2.11.0 could not be
    read here (snapshot too large; the index only stores a 2.4.0 version.py).
  * mmcv v1.3.0 (open-mmlab/mmcv tag v1.3.0), the MMCV version printed in the
    release training log log/20220503_175914.log (PyTorch 1.7.1).

Model config = release config
configs/swin/cascade_mask_rcnn_swin_small_patch4_window7_mstrain_480-800_
giou_4conv1f_adamw_3x_coco.py
on top of configs/_base_/models/cascade_mask_rcnn_swin_fpn.py (the child's
`bbox_head` list REPLACES the base's Shared2FCBBoxHead list: mmcv Config does
not merge lists).  Pure Python: shapes are tuples, () = 0-dim tensor.
"""

# Top-level checkpoint layout written by the release's runner:
#  mmcv_custom/runner/epoch_based_runner.py
#  EpochBasedRunnerAmp.save_checkpoint
#    -> meta = dict(epoch=self.epoch + 1, iter=self.iter);
#       meta.update(self.meta)
#  mmcv_custom/runner/checkpoint.py  save_checkpoint
#    -> meta.update(mmcv_version, time); meta.update(CLASSES=model.CLASSES)
#    -> {'meta', 'state_dict', 'optimizer'} and ALWAYS checkpoint['amp'] =
#       apex.amp.state_dict()
#  tools/train.py: runner meta = {env_info, config (cfg.pretty_text, a str),
#    seed, exp_name}; checkpoint_config.meta = {mmdet_version
#    ('2.11.0' + git hash[:7]), CLASSES}
#  mmcv 1.3.0 mmcv/runner/hooks/checkpoint.py CheckpointHook._save_checkpoint
#    adds runner.meta['hook_msgs']['last_ckpt'] AFTER the first save, so every
#    checkpoint from epoch 2 on (incl. epoch_36) carries meta['hook_msgs'].
# tools/model_converters/publish_model.py (if the authors used it) deletes
# only 'optimizer' ('amp' would survive).  Not verified on the actual .pth.
RELEASE_TOP_LEVEL_KEYS = ('meta', 'state_dict', 'optimizer', 'amp')
RELEASE_TOP_LEVEL_KEYS_REQUIRED = ('meta', 'state_dict')
RELEASE_META_KEYS = (
    'mmdet_version', 'CLASSES',  # CheckpointHook meta (tools/train.py)
    'epoch', 'iter',  # EpochBasedRunnerAmp.save_checkpoint
    'env_info', 'config', 'seed', 'exp_name',  # runner.meta (tools/train.py)
    'hook_msgs',  # mmcv 1.3.0 CheckpointHook
    'mmcv_version', 'time',  # mmcv_custom save_checkpoint
)


def _conv(d, prefix, out_c, in_c, k, bias=True):
    d[prefix + '.weight'] = (out_c, in_c, k, k)
    if bias:
        d[prefix + '.bias'] = (out_c,)


def _bn(d, prefix, c):
    # torch.nn.SyncBatchNorm (torch 1.7.1, track_running_stats=True)
    d[prefix + '.weight'] = (c,)
    d[prefix + '.bias'] = (c,)
    d[prefix + '.running_mean'] = (c,)
    d[prefix + '.running_var'] = (c,)
    d[prefix + '.num_batches_tracked'] = ()


def release_detector_keys(num_classes=80, neck_in=(96, 192, 384, 768)):
    """Every key outside ``backbone.`` with its shape (a tuple)."""
    d = {}

    # ---- neck: mmdet/models/necks/fpn.py, class FPN --------------------
    # self.lateral_convs / self.fpn_convs = nn.ModuleList of mmcv ConvModule
    # (attr `conv`); norm_cfg=None -> bias='auto' -> bias=True
    # (mmcv 1.3.0 mmcv/cnn/bricks/conv_module.py).  add_extra_convs=False
    # (default), so num_outs=5 adds NO extra fpn_convs (level 5 = max-pool).
    for i, c in enumerate(neck_in):
        _conv(d, f'neck.lateral_convs.{i}.conv', 256, c, 1)
        _conv(d, f'neck.fpn_convs.{i}.conv', 256, 256, 3)

    # ---- rpn_head: mmdet/models/dense_heads/rpn_head.py, class RPNHead --
    # _init_layers: self.rpn_conv (3x3), self.rpn_cls, self.rpn_reg (1x1).
    # num_anchors = AnchorGenerator.num_base_anchors[0]
    #   (mmdet/core/anchor/anchor_generator.py) = len(scales=[8]) *
    #   len(ratios=[0.5,1,2]) = 3.
    # cls_out_channels (mmdet/models/dense_heads/anchor_head.py AnchorHead):
    #   RPNHead passes num_classes=1, use_sigmoid=True -> 1.
    A = 3
    _conv(d, 'rpn_head.rpn_conv', 256, 256, 3)
    _conv(d, 'rpn_head.rpn_cls', A * 1, 256, 1)
    _conv(d, 'rpn_head.rpn_reg', A * 4, 256, 1)

    # ---- roi_head: mmdet/models/roi_heads/cascade_roi_head.py,
    # class CascadeRoIHead (3 stages): self.bbox_roi_extractor,
    # self.bbox_head, self.mask_roi_extractor, self.mask_head are
    # nn.ModuleLists of length num_stages (mask_head dict replicated x3,
    # share_roi_extractor=False since mask_roi_extractor is given).
    # SingleRoIExtractor (roi_extractors/single_level_roi_extractor.py,
    # base_roi_extractor.py: self.roi_layers = ModuleList of mmcv RoIAlign)
    # -> no parameters, no buffers.  Losses / bbox coders: no params/buffers.
    for s in range(3):
        # bbox_heads/convfc_bbox_head.py class ConvFCBBoxHead
        # (_add_conv_fc_branch): self.shared_convs = ModuleList of
        # ConvModule(conv_in, 256, 3, padding=1, norm_cfg=SyncBN) ->
        # conv without bias (bias='auto'), norm submodule named 'bn'
        # (mmcv 1.3.0 build_norm_layer/infer_abbr: SyncBatchNorm is a
        # _BatchNorm -> 'bn', postfix '').
        p = f'roi_head.bbox_head.{s}'
        for j in range(4):
            _conv(d, f'{p}.shared_convs.{j}.conv', 256, 256, 3, bias=False)
            _bn(d, f'{p}.shared_convs.{j}.bn', 256)
        # self.shared_fcs: nn.Linear(256 * roi_feat_area(7*7), 1024)
        d[f'{p}.shared_fcs.0.weight'] = (1024, 256 * 7 * 7)
        d[f'{p}.shared_fcs.0.bias'] = (1024,)
        # cls_convs/cls_fcs/reg_convs/reg_fcs: empty ModuleLists.
        # self.fc_cls = nn.Linear(cls_last_dim, num_classes + 1)
        d[f'{p}.fc_cls.weight'] = (num_classes + 1, 1024)
        d[f'{p}.fc_cls.bias'] = (num_classes + 1,)
        # self.fc_reg = nn.Linear(reg_last_dim, 4 * num_classes)
        # (reg_class_agnostic=False in the release config)
        d[f'{p}.fc_reg.weight'] = (4 * num_classes, 1024)
        d[f'{p}.fc_reg.bias'] = (4 * num_classes,)

        # mask_heads/fcn_mask_head.py class FCNMaskHead: self.convs =
        # ModuleList of 4 ConvModule(256, 256, 3), norm_cfg=None -> bias.
        p = f'roi_head.mask_head.{s}'
        for j in range(4):
            _conv(d, f'{p}.convs.{j}.conv', 256, 256, 3)
        # self.upsample = build_upsample_layer(type='deconv') -> mmcv
        # ConvTranspose2d(256, 256, kernel_size=2, stride=2);
        # weight layout (in, out, k, k)
        d[f'{p}.upsample.weight'] = (256, 256, 2, 2)
        d[f'{p}.upsample.bias'] = (256,)
        # self.conv_logits = Conv2d(256, num_classes, 1) (class_agnostic=False)
        _conv(d, f'{p}.conv_logits', num_classes, 256, 1)
    return d

