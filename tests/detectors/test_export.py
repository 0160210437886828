"""ONNX export of Fast and Faster R-CNN: the graph in ONNX Runtime gives the eager model's detections on
image sizes and batch sizes other than the ones it was exported with, and on images without detections."""

from __future__ import annotations

import onnxruntime  # the export extra: pip install -e .[export]
import pytest
import torch
from torch import nn

from rcnn.detectors.export import ExportableDetector, export_onnx

EXPORT_SIZE = (96, 128)
SIZES = [(64, 80), (50, 70), (33, 100), (120, 48)]  # none is the export size
SMALL = (20, 100)  # shorter than the RPN's min_size: no proposal survives, so no detection


def _spread(model: nn.Module) -> nn.Module:
    """Seeded predictor weights larger than the init's, so that scores and boxes differ clearly between
    RoIs and classes (an untrained head scores every class ~1 / (K + 1))."""
    torch.manual_seed(3)
    nn.init.normal_(model.roi_heads.predictor.cls_score.weight, std=0.3)
    nn.init.normal_(model.roi_heads.predictor.bbox_pred.weight, std=0.03)
    return model.eval()


@pytest.fixture(scope="module")
def faster(make_config, make_detector, tmp_path_factory):
    """A tiny Faster R-CNN (RoI pooling) whose RPN keeps boxes of 24 px and more, and its ONNX file."""
    cfg = make_config()
    cfg.rpn.anchor_sizes, cfg.rpn.min_size = [16.0, 48.0], 24.0
    torch.manual_seed(0)
    model = _spread(make_detector(2, cfg=cfg))
    path = export_onnx(model, str(tmp_path_factory.mktemp("onnx") / "faster.onnx"), example_size=EXPORT_SIZE)
    return model, onnxruntime.InferenceSession(path)


@pytest.fixture(scope="module")
def fast(make_config, make_detector, tmp_path_factory):
    """A tiny Fast R-CNN (RoIAlign, proposals as the second input) and its ONNX file."""
    cfg = make_config()
    cfg.roi_heads.pooler, cfg.roi_heads.sampling_ratio = "roi_align", 2
    torch.manual_seed(1)
    model = _spread(make_detector(3, rpn=False, cfg=cfg))
    path = export_onnx(model, str(tmp_path_factory.mktemp("onnx") / "fast.onnx"), example_size=EXPORT_SIZE)
    return model, onnxruntime.InferenceSession(path)


def _images(size: tuple[int, int], n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *size, generator=g) * 255


def _proposals(size: tuple[int, int], n: int, count: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    xy = torch.rand(n, count, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
    wh = 4 + torch.rand(n, count, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5])
    boxes = torch.cat([xy, (xy + wh).minimum(torch.tensor([w, h]))], dim=-1)
    return list(boxes.unbind(0))


def _as_rois(proposals: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([torch.cat([torch.full((len(p), 1), float(i)), p], 1) for i, p in enumerate(proposals)])


def _assert_same(eager: list[dict], outputs: list, num_images: int) -> int:
    """ONNX outputs (boxes, labels, scores, image_index) against the eager detections, image by image;
    returns the number of detections."""
    boxes, labels, scores, image = (torch.from_numpy(o) for o in outputs)
    for i in range(num_images):
        mine = image == i
        expected = eager[i]
        assert int(mine.sum()) == len(expected["scores"])
        assert torch.equal(labels[mine], expected["labels"])
        torch.testing.assert_close(boxes[mine], expected["boxes"], atol=1e-2, rtol=0)
        torch.testing.assert_close(scores[mine], expected["scores"], atol=1e-4, rtol=0)
    return len(scores)


@torch.no_grad()
def test_wrapper_batch_equals_the_model_image_by_image(faster):
    model, _ = faster
    images = _images((64, 80), 3, seed=5)
    eager = model(list(images))
    got = ExportableDetector(model)(images)
    assert _assert_same(eager, [t.numpy() for t in got], 3) > 0


@torch.no_grad()
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("batch", [1, 2])
def test_faster_rcnn_onnx_matches_eager(faster, size, batch):
    model, session = faster
    images = _images(size, batch, seed=size[0] + batch)
    outputs = session.run(None, {"images": images.numpy()})
    assert _assert_same(model(list(images)), outputs, batch) > 0


@torch.no_grad()
def test_faster_rcnn_onnx_without_detections(faster):
    model, session = faster
    images = _images(SMALL, 2, seed=9)
    eager = model(list(images))
    assert all(len(d["scores"]) == 0 for d in eager)
    outputs = session.run(None, {"images": images.numpy()})
    assert _assert_same(eager, outputs, 2) == 0
    assert outputs[0].shape == (0, 4)


@torch.no_grad()
@pytest.mark.parametrize("size", SIZES[:3])
def test_fast_rcnn_onnx_matches_eager_with_proposals_as_input(fast, size):
    model, session = fast
    images = _images(size, 2, seed=size[1])
    proposals = _proposals(size, 2, 40, seed=size[0])
    outputs = session.run(None, {"images": images.numpy(), "proposals": _as_rois(proposals).numpy()})
    assert _assert_same(model(list(images), proposals=proposals), outputs, 2) > 0


@torch.no_grad()
def test_fast_rcnn_onnx_without_proposals_gives_no_detections(fast):
    model, session = fast
    images = _images((64, 80), 1, seed=2)
    eager = model(list(images), proposals=[torch.zeros((0, 4))])
    outputs = session.run(None, {"images": images.numpy(), "proposals": torch.zeros((0, 5)).numpy()})
    assert _assert_same(eager, outputs, 1) == 0


def test_soft_nms_is_refused(make_detector):
    model = make_detector()
    model.roi_heads.soft_nms = "linear"
    with pytest.raises(ValueError, match="soft_nms"):
        ExportableDetector(model)
