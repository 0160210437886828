"""ImageFolder dataset and classification transforms: classes, errors, crops, ten-crop, PCA lighting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rcnn.data.errors import DatasetError
from rcnn.data.imagefolder import (
    ImageFolderDataset,
    PCALighting,
    build_classification_transforms,
    ten_crop_transform,
)


def make_folder(root: Path, sizes=((20, 30), (25, 25))) -> Path:
    for k, name in enumerate(["zebra", "ant", "cow"]):
        (root / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            image = np.full((h, w, 3), (10 * k, 20 * i, 200), np.uint8)  # BGR: red = 200
            cv2.imwrite(str(root / name / f"{i}.png"), image)
    (root / "ant" / "notes.txt").write_text("not an image")
    return root


def test_classes_samples_and_rgb(tmp_path):
    ds = ImageFolderDataset(make_folder(tmp_path / "train"))
    assert ds.classes == ["ant", "cow", "zebra"]
    assert ds.class_to_idx == {"ant": 0, "cow": 1, "zebra": 2}
    assert len(ds) == 6 and ds.targets == [0, 0, 1, 1, 2, 2]
    image, label = ds[2]
    assert label == 1 and image.dtype == torch.uint8 and tuple(image.shape) == (3, 20, 30)
    assert image[0].unique().tolist() == [200]  # channel 0 is red


def test_corrupt_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / "train")
    (root / "cow" / "1.png").write_bytes(b"garbage")
    ds = ImageFolderDataset(root)
    with pytest.raises(DatasetError, match=r"cow.1\.png.*cannot decode"):
        ds[3]


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        ImageFolderDataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class sub-folders"):
        ImageFolderDataset(tmp_path / "empty")
    (tmp_path / "empty" / "a").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")


def test_train_and_eval_transforms_shapes_and_normalisation():
    image = torch.full((3, 40, 60), 255, dtype=torch.uint8)
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    train = build_classification_transforms(True, resize=32, crop=24, color_jitter=0.0, mean=mean, std=std)
    out = train(image)
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((3, 24, 24), 2.0))  # (1 - 0.5) / 0.25
    ev = build_classification_transforms(False, resize=32, crop=24, mean=mean, std=std)
    assert ev(image).shape == (3, 24, 24)


def test_eval_transform_is_resize_then_centre_crop():
    # a 2-colour image: the centre crop of the 32x48 resize only sees columns 12..35
    image = torch.zeros((3, 40, 60), dtype=torch.uint8)
    image[:, :, :10] = 255  # left strip, outside the centre crop after resize (cols 0..7 of 48)
    ev = build_classification_transforms(False, resize=32, crop=24, mean=[0, 0, 0], std=[1, 1, 1])
    out = ev(image)
    assert out.max() == 0.0
    # the train crop can reach the strip
    train = build_classification_transforms(True, resize=32, crop=24, mean=[0, 0, 0], std=[1, 1, 1])
    torch.manual_seed(0)
    assert any(train(image).max() > 0.5 for _ in range(30))


def test_pca_lighting_adds_one_colour_shift_per_image():
    torch.manual_seed(0)
    image = torch.rand(3, 8, 8)
    out = PCALighting(0.1)(image)
    shift = out - image
    assert not torch.allclose(shift, torch.zeros_like(shift))
    torch.testing.assert_close(shift, shift[:, :1, :1].expand_as(shift))  # same for every pixel
    assert torch.equal(PCALighting(0.0)(image), image)
    t = build_classification_transforms(
        True, resize=8, crop=8, hflip=False, pca_lighting=0.1, mean=[0] * 3, std=[1] * 3
    )
    flat = torch.full((3, 8, 8), 128, dtype=torch.uint8)
    assert not torch.allclose(t(flat), torch.full((3, 8, 8), 128 / 255))


def test_ten_crop_shapes_and_flips():
    image = torch.arange(3 * 40 * 60, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(3, 40, 60)
    t = ten_crop_transform(resize=40, crop=32, mean=[0, 0, 0], std=[1, 1, 1])
    out = t(image)
    assert out.shape == (10, 3, 32, 32) and out.dtype == torch.float32
    x = image.float() / 255
    torch.testing.assert_close(out[0], x[:, :32, :32])  # top-left corner
    torch.testing.assert_close(out[4], x[:, 4:36, 14:46])  # centre
    torch.testing.assert_close(out[5], x.flip(-1)[:, :32, :32])  # flipped top-left


def test_crop_larger_than_resize_is_rejected():
    with pytest.raises(ValueError, match="crop"):
        build_classification_transforms(True, resize=32, crop=64)
    with pytest.raises(ValueError, match="crop"):
        ten_crop_transform(resize=32, crop=64)


def test_dataset_with_transform_in_a_loader(tmp_path):
    ds = ImageFolderDataset(make_folder(tmp_path / "train"), build_classification_transforms(True, 24, 16))
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=6)))
    assert images.shape == (6, 3, 16, 16) and labels.tolist() == [0, 0, 1, 1, 2, 2]
