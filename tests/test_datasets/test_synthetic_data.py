"""The synthetic shapes generators: determinism, format, loaders, resuming."""
import filecmp
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from helpers.paths import REPO
from stvit_mm.datasets import coco_ade_format, scenes, synthetic
from stvit_mm.datasets.synthetic import (ADE_METAINFO,
                                         ADE_METAINFO_WITH_BACKGROUND,
                                         COCO_METAINFO, MANIFEST_NAME,
                                         PARTIAL_NAME, SHAPE_CLASSES,
                                         generate_synthetic_dataset,
                                         is_complete)

CLI = osp.join(REPO, 'tools', 'dataset_converters', 'make_synthetic_data.py')
# Small enough to generate in well under a second, big enough to hold
# multi-object images with occlusion.
SMALL = dict(num_train=12, num_val=3, size=96, seed=3)


def all_files(root):
    """Relative paths of every file under ``root``."""
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root)
        for f in files)


def same_tree(a, b):
    """Whether two directories hold the same files with the same bytes."""
    files = all_files(a)
    return files == all_files(b) and all(
        filecmp.cmp(osp.join(a, f), osp.join(b, f), shallow=False)
        for f in files)


# The generator's own tests use sets of SMALL: these two override the tiny
# sets of tests/conftest.py.
@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('coco') / 'shapes')
    assert generate_synthetic_dataset('coco', root, **SMALL)
    return root


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ade') / 'shapes')
    assert generate_synthetic_dataset('ade', root, **SMALL)
    return root


def scene(split, index, seed=SMALL['seed'], size=SMALL['size']):
    return scenes.generate_scene(
        synthetic.scene_rng(seed, split, index), size)


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('kind', ['coco', 'ade'])
def test_same_arguments_give_identical_bytes(kind, tmp_path, coco_root,
                                             ade_root):
    again = str(tmp_path / 'again')
    assert generate_synthetic_dataset(kind, again, **SMALL)
    assert same_tree(coco_root if kind == 'coco' else ade_root, again)


def test_different_seed_differs(tmp_path, coco_root):
    other = str(tmp_path / 'other')
    generate_synthetic_dataset('coco', other, **dict(SMALL, seed=4))
    for rel in ('annotations/instances_train.json', 'train/000000.jpg'):
        assert not filecmp.cmp(
            osp.join(coco_root, rel), osp.join(other, rel), shallow=False)


def test_coco_and_ade_share_scenes(coco_root, ade_root):
    # Same seed, same pictures: the two demos train on the same images.
    assert filecmp.cmp(
        osp.join(coco_root, 'val', '000001.jpg'),
        osp.join(ade_root, 'images', 'validation', '000001.jpg'),
        shallow=False)


# ---------------------------------------------------------------------------
# COCO format
# ---------------------------------------------------------------------------
def test_coco_layout_and_fields(coco_root):
    for split, num in (('train', SMALL['num_train']),
                       ('val', SMALL['num_val'])):
        with open(osp.join(coco_root, 'annotations',
                           f'instances_{split}.json')) as f:
            coco = json.load(f)
        assert [c['name'] for c in coco['categories']] == list(SHAPE_CLASSES)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3, 4]
        assert len(coco['images']) == num
        for img in coco['images']:
            assert osp.isfile(osp.join(coco_root, split, img['file_name']))
            assert img['height'] == img['width'] == SMALL['size']
        ann_ids = [a['id'] for a in coco['annotations']]
        assert len(set(ann_ids)) == len(ann_ids)
        for ann in coco['annotations']:
            assert ann['iscrowd'] == 0
            assert ann['area'] >= scenes.MIN_VISIBLE_AREA
            assert 1 <= ann['category_id'] <= 4
            assert all(len(p) >= 6 and len(p) % 2 == 0
                       for p in ann['segmentation'])


def test_coco_masks_decode_to_the_visible_masks(coco_root):
    from pycocotools.coco import COCO
    coco = COCO(osp.join(coco_root, 'annotations', 'instances_train.json'))
    occluded = counts = 0
    for index in range(SMALL['num_train']):
        _, labels, full_masks = scene('train', index)
        visible = scenes.visible_masks(full_masks)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[index + 1]))
        assert 1 <= len(anns) <= 4
        # Every drawn object is annotated, in drawing order.
        assert [a['category_id'] - 1 for a in anns] == labels
        counts += len(anns)
        for ann, full, vis in zip(anns, full_masks, visible):
            decoded = coco.annToMask(ann).astype(bool)
            iou = (decoded & vis).sum() / (decoded | vis).sum()
            assert iou > 0.99
            assert ann['area'] == int(vis.sum())
            ys, xs = np.nonzero(vis)
            assert ann['bbox'] == [
                xs.min(), ys.min(), xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            occluded += int(vis.sum() < full.sum())
            # Occlusion never hides more than half of an object.
            assert vis.sum() >= 0.5 * full.sum()
    assert counts > SMALL['num_train']  # some images hold several objects
    assert occluded > 0  # and some objects are partly hidden


def test_coco_loads_in_mmdet_coco_dataset(coco_root):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    from pycocotools.coco import COCO

    dataset = CocoDataset(
        data_root=coco_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=COCO_METAINFO,
        pipeline=[
            LoadImageFromFile(),
            LoadAnnotations(with_bbox=True, with_mask=True)
        ])
    assert len(dataset) == SMALL['num_train']
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    coco = COCO(osp.join(coco_root, 'annotations', 'instances_train.json'))
    for index in range(3):
        results = dataset[index]
        assert results['img'].shape == (SMALL['size'], SMALL['size'], 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[results['img_id']]))
        # mmdet's own polygon decoding gives the annotated areas.
        np.testing.assert_array_equal(results['gt_masks'].areas,
                                      [a['area'] for a in anns])
        np.testing.assert_array_equal(results['gt_bboxes_labels'],
                                      [a['category_id'] - 1 for a in anns])
        boxes = results['gt_bboxes'].numpy()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert (boxes >= 0).all() and (boxes <= SMALL['size']).all()


# ---------------------------------------------------------------------------
# ADE20K format
# ---------------------------------------------------------------------------
def _seg_dataset(root, metainfo, reduce_zero_label, split='training'):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    return BaseSegDataset(
        data_root=root,
        data_prefix=dict(
            img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=reduce_zero_label,
        metainfo=metainfo,
        pipeline=[LoadImageFromFile(), LoadAnnotations()])


def test_ade_loads_in_mmseg_like_ade20k(ade_root):
    dataset = _seg_dataset(ade_root, ADE_METAINFO, reduce_zero_label=True)
    assert len(dataset) == SMALL['num_train']
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    for index in range(SMALL['num_train']):
        results = dataset[index]
        seg = results['gt_seg_map']
        assert seg.shape == results['img'].shape[:2]
        assert set(np.unique(seg)) <= {0, 1, 2, 3, 255}
        _, labels, masks = scene('train', index)
        expected = coco_ade_format.scene_to_label_map(labels, masks,
                                                      SMALL['size'])
        # reduce_zero_label: background -> 255 (ignored), class k + 1 -> k.
        np.testing.assert_array_equal(
            seg, np.where(expected == 0, 255, expected.astype(int) - 1))
    assert len(_seg_dataset(ade_root, ADE_METAINFO, True,
                            'validation')) == SMALL['num_val']


def test_ade_with_background_class(ade_root):
    dataset = _seg_dataset(
        ade_root, ADE_METAINFO_WITH_BACKGROUND, reduce_zero_label=False)
    seg = dataset[0]['gt_seg_map']
    assert set(np.unique(seg)) <= set(range(len(SHAPE_CLASSES) + 1))
    assert 0 in seg and seg.max() >= 1


@pytest.mark.parametrize('task,kind', [('coco', 'coco'), ('ade', 'ade')])
def test_quickstart_config_reads_the_generated_data(task, kind, coco_root,
                                                    ade_root):
    """The quickstart configs' own dataset settings, on this data."""
    cfg_path = osp.join(REPO, 'configs', 'quickstart',
                        f'stvit_r_swin_quickstart_{task}.py')
    if not osp.isfile(cfg_path):
        pytest.skip(f'{cfg_path} is not written yet')
    from mmengine.config import Config
    from mmengine.registry import DATASETS, init_default_scope
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.default_scope)
    root = coco_root if kind == 'coco' else ade_root
    for split, num in (('train', SMALL['num_train']),
                       ('val', SMALL['num_val'])):
        dataset_cfg = cfg[f'{split}_dataloader'].dataset
        dataset_cfg.data_root = root
        dataset = DATASETS.build(dataset_cfg)
        assert len(dataset) == num
        assert tuple(dataset.metainfo['classes']) == SHAPE_CLASSES
        assert dataset[0] is not None


# ---------------------------------------------------------------------------
# Skipping, resuming and not overwriting
# ---------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def interrupt_after(n):
    """A progress callback that aborts the generation after ``n`` images."""

    def progress(split, done, total):
        if done >= n:
            raise Interrupt

    return progress


def test_interrupted_generation_is_redone(tmp_path, coco_root):
    root = str(tmp_path / 'shapes')
    with pytest.raises(Interrupt):
        generate_synthetic_dataset('coco', root, progress=interrupt_after(3),
                                   **SMALL)
    assert osp.isfile(osp.join(root, 'train', '000002.jpg'))
    assert not osp.exists(osp.join(root, MANIFEST_NAME))
    assert not is_complete(root, 'coco', **SMALL)
    assert generate_synthetic_dataset('coco', root, **SMALL)
    assert not osp.exists(osp.join(root, PARTIAL_NAME))
    assert is_complete(root, 'coco', **SMALL)
    assert same_tree(root, coco_root)


def test_complete_data_is_kept(tmp_path):
    root = str(tmp_path / 'shapes')
    assert generate_synthetic_dataset('ade', root, **SMALL)
    with open(osp.join(root, 'README.txt'), 'w') as f:
        f.write('mine')
    stamps = {f: os.stat(osp.join(root, f)).st_mtime_ns
              for f in all_files(root)}
    assert not generate_synthetic_dataset('ade', root, **SMALL)
    assert stamps == {
        f: os.stat(osp.join(root, f)).st_mtime_ns
        for f in all_files(root)
    }


def test_changed_arguments_regenerate_only_own_files(tmp_path):
    root = str(tmp_path / 'shapes')
    generate_synthetic_dataset('ade', root, **SMALL)
    with open(osp.join(root, 'README.txt'), 'w') as f:
        f.write('mine')
    smaller = dict(SMALL, num_train=5)
    assert generate_synthetic_dataset('ade', root, **smaller)
    assert is_complete(root, 'ade', **smaller)
    # Images the new arguments do not produce are removed (mmseg would
    # otherwise pick them up by scanning the folder); the user's file stays.
    assert len(os.listdir(osp.join(root, 'images', 'training'))) == 5
    with open(osp.join(root, 'README.txt')) as f:
        assert f.read() == 'mine'


def test_truncated_file_makes_it_incomplete(tmp_path):
    root = str(tmp_path / 'shapes')
    generate_synthetic_dataset('coco', root, **SMALL)
    path = osp.join(root, 'val', '000000.jpg')
    with open(path, 'r+b') as f:
        f.truncate(100)
    assert not is_complete(root, 'coco', **SMALL)
    assert generate_synthetic_dataset('coco', root, **SMALL)
    assert osp.getsize(path) > 100


def test_foreign_directory_is_refused(tmp_path):
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    real = root / 'annotations' / 'instances_train.json'
    real.write_text('{"real": "data"}')
    with pytest.raises(FileExistsError):
        generate_synthetic_dataset('coco', str(root), **SMALL)
    assert real.read_text() == '{"real": "data"}'
    assert sorted(os.listdir(root)) == ['annotations']


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, CLI, *args], capture_output=True,
                          text=True, cwd=REPO)


def test_cli_generates_then_reuses(tmp_path):
    out = str(tmp_path / 'ade')
    args = ('ade', '--out', out, '--num-train', '4', '--num-val', '2',
            '--size', '64', '--seed', '1')
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert 'Generated' in first.stdout
    assert is_complete(out, 'ade', num_train=4, num_val=2, size=64, seed=1)
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert 'already holds' in second.stdout


def test_cli_refuses_foreign_directory(tmp_path):
    (tmp_path / 'photo.jpg').write_bytes(b'not ours')
    result = run_cli('coco', '--out', str(tmp_path), '--num-train', '2')
    assert result.returncode == 1
    assert 'refusing' in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['photo.jpg']


# ---------------------------------------------------------------------------
# The ImageNet layout (classification)
# ---------------------------------------------------------------------------
def test_imagenet_layout_is_read_by_mmpretrain(tmp_path):
    """Class folders and meta/{split}.txt; mmpretrain's ImageNet dataset
    reads every image with the label of the one shape it shows; classes
    take turns, so the splits are balanced; the same arguments give the
    same bytes."""
    from mmpretrain.datasets import ImageNet

    from stvit_mm.datasets.synthetic import IMAGENET_METAINFO
    params = dict(num_train=8, num_val=4, size=64, seed=3)
    root = str(tmp_path / 'in')
    assert generate_synthetic_dataset('imagenet', root, **params)
    for split, num in (('train', 8), ('val', 4)):
        dataset = ImageNet(data_root=root, split=split,
                           metainfo=IMAGENET_METAINFO)
        assert len(dataset) == num
        for i in range(num):
            info = dataset.get_data_info(i)
            label = int(info['gt_label'])
            assert label == i % len(SHAPE_CLASSES)
            assert osp.basename(osp.dirname(info['img_path'])) == \
                SHAPE_CLASSES[label]
            _, labels, _ = scenes.generate_scene(
                synthetic.scene_rng(3, split, i), 64, label)
            assert labels == [label]
    again = str(tmp_path / 'again')
    assert generate_synthetic_dataset('imagenet', again, **params)
    assert same_tree(root, again)
    assert is_complete(root, 'imagenet', **params)
