"""Detection transforms: exact geometry of resize and flip, clipping, dropped boxes, proposals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rcnn.data.transforms import ToTensorTransform, build_detection_transforms, resize_scale


def _target(boxes, labels=None, **extra):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    target = {
        "boxes": boxes,
        "labels": np.arange(1, n + 1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64),
        "iscrowd": np.zeros(n, np.int64),
        "area": ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float32),
    }
    target.update(extra)
    return target


def _image(h, w):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_resize_scale_rule():
    # shorter side 600 unless the longer side would pass 1000
    assert resize_scale(400, 500, 600, 1000) == pytest.approx(1.5)  # 600 x 750
    assert resize_scale(300, 900, 600, 1000) == pytest.approx(1000 / 900)  # longer side caps
    assert resize_scale(1200, 800, 600, 1000) == pytest.approx(0.75)


def test_resize_exact_boxes_and_area():
    t = build_detection_transforms(False, 50, 1000)
    image, target = t(_image(100, 200), _target([[10, 20, 30, 40], [100, 0, 200, 100]]))
    # scale 0.5: 100x200 -> 50x100; boxes halve; area quarters
    assert tuple(image.shape) == (3, 50, 100)
    assert image.dtype == torch.float32
    torch.testing.assert_close(target["boxes"], torch.tensor([[5.0, 10, 15, 20], [50, 0, 100, 50]]))
    torch.testing.assert_close(target["area"], torch.tensor([100.0, 2500.0]))
    assert target["labels"].tolist() == [1, 2]


def test_resize_longer_side_cap():
    t = build_detection_transforms(False, [100], 300)
    image, target = t(_image(100, 400), _target([[40, 20, 80, 60]]))
    # min(100/100, 300/400) = 0.75 -> 75 x 300
    assert tuple(image.shape) == (3, 75, 300)
    torch.testing.assert_close(target["boxes"], torch.tensor([[30.0, 15, 60, 45]]))


def test_horizontal_flip_exact():
    t = build_detection_transforms(True, [100], 1000, hflip_prob=1.0)
    img = _image(100, 200)
    image, target = t(img, _target([[10, 20, 30, 40]]))
    # scale 1, width 200: x1' = 200 - 30, x2' = 200 - 10
    torch.testing.assert_close(target["boxes"], torch.tensor([[170.0, 20, 190, 40]]))
    assert torch.equal(image, torch.from_numpy(img[:, ::-1].copy()).permute(2, 0, 1).float())


def test_resize_then_flip_exact():
    t = build_detection_transforms(True, [50], 1000, hflip_prob=1.0)
    _, target = t(_image(100, 200), _target([[10, 20, 30, 40]]))
    # 0.5 scale -> [5, 10, 15, 20] in a 100-wide image -> flipped [85, 10, 95, 20]
    torch.testing.assert_close(target["boxes"], torch.tensor([[85.0, 10, 95, 20]]))


def test_no_flip_when_probability_zero_and_eval_uses_first_size():
    t = build_detection_transforms(True, [100], 1000, hflip_prob=0.0)
    for _ in range(5):
        _, target = t(_image(100, 200), _target([[10, 20, 30, 40]]))
        torch.testing.assert_close(target["boxes"], torch.tensor([[10.0, 20, 30, 40]]))
    t = build_detection_transforms(False, [50, 100], 1000)
    for _ in range(5):
        image, _ = t(_image(100, 200), _target([[10, 20, 30, 40]]))
        assert tuple(image.shape) == (3, 50, 100)


def test_multiscale_training_draws_every_size():
    t = build_detection_transforms(True, [50, 100, 150], 1000, hflip_prob=0.0)
    t.set_random_seed(0)
    sizes = {t(_image(100, 200), _target([[10, 20, 30, 40]]))[0].shape[1] for _ in range(40)}
    assert sizes == {50, 100, 150}


def test_clip_and_drop_vanished_boxes_with_their_fields():
    t = build_detection_transforms(False, [100], 1000)
    boxes = [[-0.5, 10, 20, 30], [50, 50, 50, 60], [190, 0, 200.5, 10], [200, 10, 210, 20]]
    target = _target(
        boxes, labels=[1, 2, 3, 4], iscrowd=np.array([0, 1, 0, 1]), area=np.arange(4, dtype=np.float32)
    )
    _, out = t(_image(100, 200), target)
    torch.testing.assert_close(out["boxes"], torch.tensor([[0.0, 10, 20, 30], [190, 0, 200, 10]]))
    assert out["labels"].tolist() == [1, 3]
    assert out["iscrowd"].tolist() == [0, 0]
    torch.testing.assert_close(out["area"], torch.tensor([0.0, 2.0]))


def test_empty_target():
    t = build_detection_transforms(True, [50], 1000, hflip_prob=1.0)
    image, out = t(_image(100, 200), _target(np.zeros((0, 4))))
    assert tuple(image.shape) == (3, 50, 100)
    assert out["boxes"].shape == (0, 4) and out["boxes"].dtype == torch.float32
    assert out["labels"].shape == (0,) and out["labels"].dtype == torch.int64


def test_proposals_follow_the_boxes():
    t = build_detection_transforms(True, [50], 1000, hflip_prob=1.0)
    proposals = np.array([[0, 0, 20, 10], [100, 50, 200, 100], [10, 10, 10, 30]], np.float32)
    _, out = t(_image(100, 200), _target([[10, 20, 30, 40]], proposals=proposals))
    # scale 0.5 then flip in a 100-wide image; the zero-width proposal is dropped
    torch.testing.assert_close(out["proposals"], torch.tensor([[90.0, 0, 100, 5], [0, 25, 50, 50]]))
    torch.testing.assert_close(out["boxes"], torch.tensor([[85.0, 10, 95, 20]]))


def test_color_jitter_changes_pixels_not_boxes():
    t = build_detection_transforms(True, [100], 1000, hflip_prob=0.0, color_jitter=0.5)
    img = _image(100, 200)
    image, out = t(img, _target([[10, 20, 30, 40]]))
    assert not torch.equal(image, torch.from_numpy(img).permute(2, 0, 1).float())
    assert image.min() >= 0 and image.max() <= 255
    torch.testing.assert_close(out["boxes"], torch.tensor([[10.0, 20, 30, 40]]))


def test_seeded_transforms_repeat():
    a = build_detection_transforms(True, [50, 100], 1000, color_jitter=0.3)
    b = build_detection_transforms(True, [50, 100], 1000, color_jitter=0.3)
    a.set_random_seed(3)
    b.set_random_seed(3)
    for _ in range(4):
        ia, ta = a(_image(100, 200), _target([[10, 20, 30, 40]]))
        ib, tb = b(_image(100, 200), _target([[10, 20, 30, 40]]))
        assert torch.equal(ia, ib) and torch.equal(ta["boxes"], tb["boxes"])


def test_to_tensor_transform_clips_only():
    img = _image(30, 40)
    image, out = ToTensorTransform()(img, _target([[-0.4, 0, 40.6, 30], [39, 0, 41, 5]]))
    assert torch.equal(image, torch.from_numpy(img).permute(2, 0, 1).float())
    torch.testing.assert_close(out["boxes"], torch.tensor([[0.0, 0, 40, 30], [39, 0, 40, 5]]))


def test_mismatched_per_box_field_is_an_error():
    t = build_detection_transforms(False, [50], 1000)
    with pytest.raises(ValueError, match="labels"):
        t(_image(100, 200), {"boxes": np.zeros((2, 4), np.float32), "labels": np.zeros(3, np.int64)})


def test_augmentations_follow_the_torch_seed():
    """Each process seeds from torch (DataLoader workers get distinct seeds): same torch seed, same draws."""

    def draws(torch_seed):
        torch.manual_seed(torch_seed)
        t = build_detection_transforms(True, [50, 100, 150], 1000, hflip_prob=0.5)
        return [
            tuple(t(_image(100, 200), _target([[10, 20, 30, 40]]))[1]["boxes"][0].tolist()) for _ in range(12)
        ]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
