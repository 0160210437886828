"""CocoDetection: the target contract, label mapping, empty images, crowd boxes, proposals, collate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.data_fixtures import make_coco, snapshot

from rcnn.data.coco import CocoDetection
from rcnn.data.collate import collate_detection
from rcnn.data.errors import DatasetError
from rcnn.data.transforms import build_detection_transforms
from rcnn.structures import check_image, check_target


def test_target_contract_and_label_mapping(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    ds = CocoDetection(images_dir, ann, filter_empty=False)
    # category ids 3, 7, 11 -> labels 1, 2, 3 in id order
    assert ds.category_to_label == {3: 1, 7: 2, 11: 3}
    assert ds.label_to_category == {1: 3, 2: 7, 3: 11}
    assert ds.class_names == ["dog", "cat", "bird"]
    assert ds.num_classes == 3
    assert ds.ids == [1, 2, 3] and len(ds) == 3
    assert ds.image_info(1) == {"id": 2, "file_name": "b.png", "height": 50, "width": 30}
    assert ds.aspect_ratios() == pytest.approx([60 / 40, 30 / 50, 1.0])
    assert ds.coco.getCatIds() == [7, 3, 11]

    image, target = ds[1]
    check_image(image)
    check_target(target, ds.num_classes)
    assert image.shape == (3, 50, 30) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 255 and image.max() > 1
    assert target["image_id"] == 2 and isinstance(target["image_id"], int)
    torch.testing.assert_close(target["boxes"], torch.tensor([[1.5, 2.5, 11.5, 22.5]]))
    assert target["boxes"].dtype == torch.float32
    assert target["labels"].tolist() == [2] and target["labels"].dtype == torch.int64  # category 7
    assert target["iscrowd"].dtype == torch.int64 and target["iscrowd"].tolist() == [0]
    assert target["area"].dtype == torch.float32 and target["area"].tolist() == [200.0]
    assert target["orig_size"].tolist() == [50, 30] and target["orig_size"].dtype == torch.int64
    assert target["size"].tolist() == [50, 30] and target["size"].dtype == torch.int64


def test_image_is_rgb(tmp_path):
    import cv2

    images_dir, ann = make_coco(tmp_path)
    ds = CocoDetection(images_dir, ann)
    bgr = cv2.imread(str(images_dir / "a.png"))
    image, _ = ds[0]
    assert torch.equal(image, torch.from_numpy(bgr[..., ::-1].copy()).permute(2, 0, 1).float())


def test_size_after_transform_and_orig_size(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    ds = CocoDetection(images_dir, ann, build_detection_transforms(False, [80], 1000))
    image, target = ds[0]  # 40x60 -> 80x120
    assert image.shape == (3, 80, 120)
    assert target["size"].tolist() == [80, 120] and target["orig_size"].tolist() == [40, 60]
    torch.testing.assert_close(target["boxes"], torch.tensor([[10.0, 12, 50, 32]]))
    torch.testing.assert_close(target["area"], torch.tensor([600.0]))


def test_empty_images_filtered_by_default_and_kept_on_request(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    assert CocoDetection(images_dir, ann).ids == [1, 2]
    ds = CocoDetection(images_dir, ann, filter_empty=False)
    _, target = ds[2]
    assert target["boxes"].shape == (0, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].shape == (0,) and target["labels"].dtype == torch.int64
    assert target["iscrowd"].shape == (0,) and target["area"].shape == (0,)


def test_crowd_boxes_dropped_by_default(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    _, target = CocoDetection(images_dir, ann)[0]
    assert target["labels"].tolist() == [3]  # the crowd box of category 3 is gone
    _, target = CocoDetection(images_dir, ann, drop_crowd=False)[0]
    assert target["labels"].tolist() == [3, 1]
    assert target["iscrowd"].tolist() == [0, 1]
    torch.testing.assert_close(target["boxes"][1], torch.tensor([30.0, 0, 60, 40]))


def test_image_with_only_crowd_boxes_counts_as_empty(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1}]
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 20}]
    images_dir, ann = make_coco(tmp_path, images=images, annotations=anns)
    assert len(CocoDetection(images_dir, ann)) == 0
    assert len(CocoDetection(images_dir, ann, filter_empty=False)) == 1


def test_missing_area_and_iscrowd_get_defaults(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 4, 5]}]
    images = [{"id": 1, "file_name": "a.png", "height": 20, "width": 20}]
    images_dir, ann = make_coco(tmp_path, images=images, annotations=anns)
    ds = CocoDetection(images_dir, ann)
    _, target = ds[0]
    assert target["area"].tolist() == [20.0] and target["iscrowd"].tolist() == [0]
    assert ds.coco.anns[1]["area"] == 20.0 and ds.coco.anns[1]["iscrowd"] == 0


def test_proposals_npz_transformed_with_the_image(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    props = tmp_path / "props.npz"
    np.savez(props, **{"1": np.array([[0, 0, 60, 40], [10, 10, 20, 30]], np.float32), "2": np.zeros((0, 4))})
    ds = CocoDetection(images_dir, ann, build_detection_transforms(True, [20], 1000, hflip_prob=1.0),
                       proposals_file=props)  # fmt: skip
    _, target = ds[0]  # 40x60 -> 20x30 (scale 0.5), then flipped in a 30-wide image
    torch.testing.assert_close(target["proposals"], torch.tensor([[0.0, 0, 30, 20], [20, 5, 25, 15]]))
    torch.testing.assert_close(target["boxes"], torch.tensor([[17.5, 3, 27.5, 8]]))
    _, target = ds[1]
    assert target["proposals"].shape == (0, 4)


def test_proposals_directory_and_missing_entry(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    folder = tmp_path / "props"
    folder.mkdir()
    np.save(folder / "1.npy", np.array([[1, 2, 3, 4]], np.float32))
    ds = CocoDetection(images_dir, ann, proposals_file=folder)
    torch.testing.assert_close(ds[0][1]["proposals"], torch.tensor([[1.0, 2, 3, 4]]))
    with pytest.raises(DatasetError, match=r"2\.npy.*image id=2"):
        ds[1]
    np.savez(tmp_path / "p.npz", **{"1": np.zeros((1, 4), np.float32)})
    ds = CocoDetection(images_dir, ann, proposals_file=tmp_path / "p.npz")
    with pytest.raises(DatasetError, match=r"p\.npz.*image id=2"):
        ds[1]


def test_dataset_files_are_never_modified(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    (images_dir / "b.png").write_bytes(b"not an image")
    before = snapshot(tmp_path)
    for skip in (False, True):
        ds = CocoDetection(images_dir, ann, build_detection_transforms(True, [30], 100), skip_invalid=skip,
                           filter_empty=False)  # fmt: skip
        for i in range(len(ds)):
            try:
                ds[i]
            except DatasetError:
                assert not skip
    assert snapshot(tmp_path) == before


def test_collate_keeps_variable_sizes(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    ds = CocoDetection(images_dir, ann)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert [tuple(i.shape) for i in images] == [(3, 40, 60), (3, 50, 30)]
    assert [t["image_id"] for t in targets] == [1, 2]
    assert isinstance(images, list) and isinstance(targets, list)
