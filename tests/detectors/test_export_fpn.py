"""ONNX export of Fast and Faster R-CNN with a feature pyramid: the graph in ONNX Runtime gives the eager
model's detections (multi-level RPN, RoIAlign from the level of eq. 1) on image sizes and batch sizes
other than the export size's, and on images without detections."""

from __future__ import annotations

import onnxruntime  # the export extra: pip install -e .[export]
import pytest
import torch
from torch import nn

from rcnn.detectors.export import ExportableDetector, export_onnx
from rcnn.modeling.poolers import assign_fpn_levels

EXPORT_SIZE = (96, 128)
SIZES = [(64, 80), (120, 48), (72, 112), (100, 100)]  # none is the export size
SMALL = (32, 96)  # shorter than the RPN's min_size: no proposal survives, so no detection
MIN_SIZE = 34.0
CANONICAL_SIZE = 90.0  # eq. 1's 224 scaled to these images: RoIs of 40-100 px pool from P2, P3 and P4


def _calibrate(model: nn.Module, background: float) -> nn.Module:
    """Seeded predictor weights larger than the init's, so that scores and boxes differ clearly between
    RoIs and classes, and a ``background`` bias that leaves a few tens of boxes per image over the score
    threshold, fewer than ``detections_per_img`` (an untrained head scores every class ~1 / (K + 1))."""
    torch.manual_seed(3)
    predictor = model.roi_heads.predictor
    nn.init.normal_(predictor.cls_score.weight, std=0.3)
    nn.init.normal_(predictor.bbox_pred.weight, std=0.03)
    with torch.no_grad():
        predictor.cls_score.bias[0] = background
    model.roi_heads.pooler.canonical_size = CANONICAL_SIZE
    return model.eval()


@pytest.fixture(scope="module")
def faster(make_fpn_config, make_fpn_detector, tmp_path_factory):
    """A tiny FPN Faster R-CNN whose RPN keeps boxes of MIN_SIZE px and more, and its ONNX file."""
    cfg = make_fpn_config()
    cfg.rpn.min_size = MIN_SIZE
    torch.manual_seed(0)
    model = _calibrate(make_fpn_detector(3, cfg=cfg), background=2.5)
    path = export_onnx(model, str(tmp_path_factory.mktemp("onnx") / "fpn.onnx"), example_size=EXPORT_SIZE)
    return model, onnxruntime.InferenceSession(path)


@pytest.fixture(scope="module")
def fast(make_fpn_detector, tmp_path_factory):
    """A tiny FPN Fast R-CNN (proposals as the second input) and its ONNX file."""
    torch.manual_seed(1)
    model = _calibrate(make_fpn_detector(2, rpn=False), background=1.0)
    path = export_onnx(
        model, str(tmp_path_factory.mktemp("onnx") / "fast_fpn.onnx"), example_size=EXPORT_SIZE
    )
    return model, onnxruntime.InferenceSession(path)


def _images(size: tuple[int, int], n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *size, generator=g) * 255


def _proposals(size: tuple[int, int], n: int, count: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    xy = torch.rand(n, count, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
    wh = 8 + torch.rand(n, count, 2, generator=g) * torch.tensor([w, h])
    boxes = torch.cat([xy, (xy + wh).minimum(torch.tensor([w, h]))], dim=-1)
    return list(boxes.unbind(0))


def _as_rois(proposals: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([torch.cat([torch.full((len(p), 1), float(i)), p], 1) for i, p in enumerate(proposals)])


def _assert_same(eager: list[dict], outputs: list, num_images: int, cap: int) -> int:
    """ONNX outputs (boxes, labels, scores, image_index) against the eager detections, image by image;
    returns the number of detections, each image's fewer than ``cap`` (not cut at the limit)."""
    boxes, labels, scores, image = (torch.from_numpy(o) for o in outputs)
    for i in range(num_images):
        mine = image == i
        expected = eager[i]
        assert int(mine.sum()) == len(expected["scores"]) < cap
        assert torch.equal(labels[mine], expected["labels"])
        torch.testing.assert_close(boxes[mine], expected["boxes"], atol=1e-2, rtol=0)
        torch.testing.assert_close(scores[mine], expected["scores"], atol=1e-4, rtol=0)
    return len(scores)


@torch.no_grad()
def test_wrapper_batch_equals_the_model_and_pools_from_every_level(faster):
    model, _ = faster
    images = _images((100, 128), 2, seed=5)
    wrapper = ExportableDetector(model)
    got = wrapper(images)
    assert _assert_same(model(list(images)), [t.numpy() for t in got], 2, 100) > 0
    batch = (images - model.pixel_mean) / model.pixel_std
    rois = wrapper.propose_levels(model.backbone(batch), 100, 128)
    pooler = model.roi_heads.pooler
    levels = assign_fpn_levels(rois[:, 1:], pooler.min_level, pooler.max_level, 4, CANONICAL_SIZE)
    assert set(levels.tolist()) == {2, 3, 4}  # P2-P4 all pool some RoIs


@torch.no_grad()
@pytest.mark.parametrize("size", SIZES)
def test_fpn_faster_rcnn_onnx_matches_eager(faster, size):
    model, session = faster
    images = _images(size, 2, seed=size[0])
    outputs = session.run(None, {"images": images.numpy()})
    assert _assert_same(model(list(images)), outputs, 2, model.roi_heads.detections_per_img) > 0


@torch.no_grad()
def test_fpn_faster_rcnn_onnx_batch_of_one(faster):
    model, session = faster
    images = _images(SIZES[0], 1, seed=4)
    outputs = session.run(None, {"images": images.numpy()})
    assert _assert_same(model(list(images)), outputs, 1, model.roi_heads.detections_per_img) > 0


@torch.no_grad()
def test_fpn_faster_rcnn_onnx_without_detections(faster):
    model, session = faster
    images = _images(SMALL, 2, seed=9)
    eager = model(list(images))
    assert all(len(d["scores"]) == 0 for d in eager)
    outputs = session.run(None, {"images": images.numpy()})
    assert _assert_same(eager, outputs, 2, 1) == 0
    assert outputs[0].shape == (0, 4)


@torch.no_grad()
@pytest.mark.parametrize("size", SIZES[:3])
def test_fpn_fast_rcnn_onnx_matches_eager_with_proposals_as_input(fast, size):
    model, session = fast
    images = _images(size, 2, seed=size[1])
    proposals = _proposals(size, 2, 40, seed=size[0])
    outputs = session.run(None, {"images": images.numpy(), "proposals": _as_rois(proposals).numpy()})
    eager = model(list(images), proposals=proposals)
    assert _assert_same(eager, outputs, 2, model.roi_heads.detections_per_img) > 0
