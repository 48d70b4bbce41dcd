# UperNet, ADE20K 512x512, 160k iterations: the Swin segmentation recipe
# (mmseg's swin-small-patch4-window7-in1k-pre_upernet_8xb2-160k config:
# AdamW 6e-5, wd 0.01, 1500-iter linear warm-up then poly decay, 8 GPUs x 2
# images) plus the multi-scale flip test of the paper's ADE20K numbers.
# STViT-R released no segmentation config; it was evaluated with this
# recipe. The STViT-R-Swin configs and their Swin baselines all inherit it.
#
# Its backbone is mmseg's Swin-S (ImageNet-1k weights), which is the Swin-S
# baseline as it stands; the STViT-R-Swin configs replace it
# (`_delete_=True`) and set the heads' input widths.
_base_ = 'mmseg::swin/swin-small-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'  # noqa: E501

custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)

# 16 images per iteration in total; lets `--auto-scale-lr` work (mmseg's
# configs do not define it).
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Multi-scale + flip test (`tools/test.py --tta`), the protocol of the
# paper's ADE20K numbers: mmseg 0.x resized to (2048, 512) x ratio for
# ratios 0.5..1.75. mmseg 1.x's stock tta_pipeline scales the *original*
# image by the ratio instead, so the scales are written out here.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(2048 * r), int(512 * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
tta_model = dict(type='SegTTAModel')
