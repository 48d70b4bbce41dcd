"""Ground truth | prediction pictures of a few val images (the
quickstart's ``vis`` step), drawn so that they show what the metrics score
(:mod:`.label_pictures`): segmentation with the ignored pixels marked,
detection at 512 px or more per panel with the thresholds stated."""
import functools
import os
import os.path as osp
from typing import List

import numpy as np
import torch

from .inference import build_visualizer, read_image
from .label_pictures import (caption_strip, dataset_palette,
                             metric_score_thr, panel_scale,
                             segmentation_picture, stack_rows,
                             upscale_image)

__all__ = ['DET_SCORE_THR', 'coco_ground_truth', 'label_map_ground_truth',
           'draw_val_predictions', 'draw_detection_pair',
           'draw_segmentation_pair', 'first_val_image']

#: Score threshold of the drawn detections: the model's answer, not each
#: per-class candidate (a circle also scoring 0.48 as a square).
DET_SCORE_THR = 0.5


def coco_ground_truth(coco, img_id: int):
    """One image's COCO annotations as mmdet ground truth.

    Args:
        coco (pycocotools.coco.COCO): The annotations.
        img_id (int): The image.

    Returns:
        InstanceData: ``bboxes`` (N, 4) float32 xyxy, ``labels`` (N,) int64
        (index of the category among the sorted ids), ``masks``
        ``BitmapMasks`` (N, H, W).
    """
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    info = coco.loadImgs([img_id])[0]
    cat_ids = sorted(coco.getCatIds())
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
    boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
              a['bbox'][1] + a['bbox'][3]] for a in anns]
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(
        [cat_ids.index(a['category_id']) for a in anns], dtype=torch.long)
    masks = np.stack([coco.annToMask(a) for a in anns]) if anns else \
        np.zeros((0, info['height'], info['width']), np.uint8)
    gt.masks = BitmapMasks(masks, info['height'], info['width'])
    return gt


def label_map_ground_truth(path: str, reduce_zero_label: bool = False):
    """A label-map png as mmseg ground truth.

    Args:
        path (str): The annotation png, one class index per pixel.
        reduce_zero_label (bool): As ``LoadAnnotations`` does: 0 becomes
            the ignore index 255 and every other label drops by one.

    Returns:
        PixelData: ``data`` of shape (1, H, W), int64.
    """
    import mmcv
    from mmengine.structures import PixelData
    label = mmcv.imread(path, flag='unchanged').astype(np.int64)
    if reduce_zero_label:
        label = np.where(label == 0, 255, label - 1)
    return PixelData(data=torch.from_numpy(label)[None])


def draw_val_predictions(model: torch.nn.Module, data_root: str,
                         out_dir: str, num: int,
                         score_thr: float = DET_SCORE_THR,
                         opacity: float = 0.6) -> List[str]:
    """Draw ground truth | prediction for the first ``num`` val images.

    Args:
        model (torch.nn.Module): From :func:`init_model`.
        data_root (str): Detection: COCO layout (``val/``,
            ``annotations/instances_val.json``); segmentation: ADE20K
            layout (``images/validation/``, ``annotations/validation/``).
        out_dir (str): Where the pngs go (``<image stem>.png``).
        num (int): Number of images.
        score_thr (float): Detection: instances scoring less are not drawn.
        opacity (float): Segmentation: opacity of the label maps.

    Returns:
        list[str]: Written files.
    """
    items = []  # (image path, ground truth)
    if model.cfg.default_scope == 'mmdet':
        from pycocotools.coco import COCO
        coco = COCO(osp.join(data_root, 'annotations', 'instances_val.json'))
        for img_id in sorted(coco.getImgIds())[:num]:
            name = coco.loadImgs([img_id])[0]['file_name']
            items.append((osp.join(data_root, 'val', name),
                          coco_ground_truth(coco, img_id)))
        visualizer = build_visualizer(model)
        draw = functools.partial(draw_detection_pair, visualizer=visualizer,
                                 score_thr=score_thr)
    else:
        reduce_zero_label = model.cfg.test_dataloader.dataset.get(
            'reduce_zero_label', False)
        img_dir = osp.join(data_root, 'images', 'validation')
        for name in sorted(os.listdir(img_dir))[:num]:
            label = osp.join(data_root, 'annotations', 'validation',
                             osp.splitext(name)[0] + '.png')
            items.append((osp.join(img_dir, name),
                          label_map_ground_truth(label, reduce_zero_label)))
        draw = functools.partial(draw_segmentation_pair, opacity=opacity)
    written = []
    for image_path, gt in items:
        out_file = osp.join(
            out_dir, osp.splitext(osp.basename(image_path))[0] + '.png')
        draw(model, image_path, gt, out_file)
        written.append(out_file)
    return written


def first_val_image(scope: str, data_root: str) -> str:
    """The first val image of a quickstart layout (COCO or ADE20K)."""
    folder = osp.join(data_root, 'val') if scope == 'mmdet' else osp.join(
        data_root, 'images', 'validation')
    return osp.join(folder, sorted(os.listdir(folder))[0])


def _scaled_instances(instances, scale: int):
    """Boxes and masks of ``instances`` on a picture ``scale`` times
    larger (masks repeated pixel by pixel)."""
    if scale == 1:
        return instances
    from mmdet.structures.mask import BitmapMasks
    out = instances.clone()
    out.bboxes = instances.bboxes * scale
    masks = instances.get('masks')
    if isinstance(masks, torch.Tensor):
        out.masks = masks.repeat_interleave(scale, 1).repeat_interleave(
            scale, 2)
    elif masks is not None:
        big = masks.masks.repeat(scale, 1).repeat(scale, 2)
        out.masks = BitmapMasks(big, masks.height * scale,
                                masks.width * scale)
    return out


def draw_detection_pair(model: torch.nn.Module, image_path: str, gt,
                        out_file: str, visualizer,
                        score_thr: float = DET_SCORE_THR) -> None:
    """Ground truth | prediction of a detector, each panel at least
    :data:`~.label_pictures.MIN_PANEL` pixels, with a caption that states
    the drawing's score threshold and the one the metrics use.

    Args:
        model (torch.nn.Module): From :func:`init_model`.
        image_path (str): The image.
        gt (InstanceData): From :func:`coco_ground_truth`.
        out_file (str): The png to write.
        visualizer: From :func:`build_visualizer`.
        score_thr (float): Predictions scoring less are not drawn.
    """
    import mmcv
    from mmdet.apis import inference_detector
    image = read_image(image_path)
    result = inference_detector(model, image_path)
    scale = panel_scale(image.shape[:2])
    drawn_count = int((result.pred_instances.scores >= score_thr).sum())
    total = len(result.pred_instances)
    result.pred_instances = _scaled_instances(result.pred_instances, scale)
    result.gt_instances = _scaled_instances(gt, scale)
    visualizer.add_datasample(
        osp.basename(image_path), upscale_image(image, scale),
        data_sample=result, draw_gt=True, draw_pred=True,
        pred_score_thr=score_thr, out_file=out_file)
    drawn = mmcv.imread(out_file, channel_order='rgb')
    thr, per_img = metric_score_thr(model.cfg.model)
    kept = ('every detection the model keeps' +
            (f' (score >= {thr:g}' if thr is not None else ' (') +
            (f', at most {per_img} per image)' if per_img else ')'))
    caption = caption_strip(drawn.shape[1], [
        f'Left: ground truth. Right: prediction with score >= '
        f'{score_thr:g} ({drawn_count} of {total} detections drawn).',
        f'The COCO metrics score {kept}, without this drawing threshold.'])
    mmcv.imwrite(stack_rows(drawn, caption)[..., ::-1], out_file)


def draw_segmentation_pair(model: torch.nn.Module, image_path: str, gt,
                           out_file: str, opacity: float = 0.6) -> None:
    """Ground truth | prediction of a segmentor as mIoU scores them: pixels
    the ground truth ignores (255) are drawn as ignored in both panels, and
    a legend names the classes and the ignored pixels.

    Args:
        model (torch.nn.Module): From :func:`init_model`.
        image_path (str): The image.
        gt (PixelData): From :func:`label_map_ground_truth`.
        out_file (str): The png to write.
        opacity (float): Opacity of the class colours.
    """
    import mmcv
    from mmseg.apis import inference_model
    image = read_image(image_path)
    pred = inference_model(model, image_path).pred_sem_seg.data[0]
    pred, truth = pred.cpu().numpy(), gt.data[0].numpy()
    classes = model.dataset_meta.get('classes', [])
    palette = dataset_palette(model.dataset_meta)
    picture = segmentation_picture(image, pred, truth, classes, palette,
                                   opacity)
    mmcv.imwrite(picture[..., ::-1], out_file)
