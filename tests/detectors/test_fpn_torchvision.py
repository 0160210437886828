"""A torchvision ``fasterrcnn_resnet50_fpn`` (random weights from a fixed seed; nothing is downloaded)
loads into rcnn's FPN detector, directly and through tools/convert_torchvision_detector.py, and both give
the same detections; the FPN detector's config errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig, ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.torchvision_weights import convert_torchvision_fpn
from rcnn.tasks.detection import load_detector
from tools.benchmarks.torchvision_pair import NoResizeTransform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "resnet50_fpn.yaml")
K = 5  # foreground classes; torchvision's num_classes = K + 1
# small top-n keep the test fast; the rest is configs/faster_rcnn/resnet50_fpn.yaml
SETTINGS = ["model.rpn.pre_nms_top_n_test=200", "model.rpn.post_nms_top_n_test=100"]


def torchvision_model() -> torch.nn.Module:
    """torchvision's R50-FPN with random weights; batch norm statistics away from identity, and predictor
    weights scaled so that scores neither saturate nor tie and boxes stay apart."""
    torch.manual_seed(0)
    tv = fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=K + 1,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=100,
    )
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in tv.backbone.body.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        tv.roi_heads.box_predictor.cls_score.weight.mul_(0.01)
        tv.roi_heads.box_predictor.bbox_pred.weight.mul_(0.01)
        tv.rpn.head.cls_logits.weight.normal_(0, 0.05, generator=gen)
    # as tools/benchmarks/torchvision_pair.py: normalise and pad to 32, never resize
    tv.transform = NoResizeTransform(1, 1, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], size_divisible=32)
    return tv.eval()


def images() -> list[torch.Tensor]:
    """RGB 0..255; their padded batch (128 x 192) is a multiple of 64 (see test_same_detections)."""
    gen = torch.Generator().manual_seed(2)
    return [torch.rand(3, 120, 190, generator=gen) * 255, torch.rand(3, 97, 131, generator=gen) * 255]


def fpn_config(extra: list[str] = ()) -> DetectionConfig:
    return load_config(CONFIG, DetectionConfig, [*SETTINGS, *extra])


@pytest.fixture(scope="module")
def pair():
    tv = torchvision_model()
    ours = build_detector(fpn_config().model, K)
    ours.load_state_dict(convert_torchvision_fpn(tv.state_dict()), strict=True)
    return ours.eval(), tv


def assert_same(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert len(a["boxes"]) >= 10, f"image {i}: too few detections to compare"
        assert a["boxes"].shape == b["boxes"].shape, f"image {i}"
        # the random trunk's activations are large (hundreds): float32 rounding reaches ~1e-2 pixels
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=0.05, rtol=0)
        torch.testing.assert_close(a["scores"], b["scores"], atol=2e-4, rtol=0)
        assert torch.equal(a["labels"], b["labels"]), f"image {i}"


def test_same_detections_as_torchvision(pair):
    """torchvision's P6 anchors take the stride ``padded size // P6 size``, 64 only when the padded batch
    is a multiple of 64 (ours: always 64); the images are chosen so."""
    ours, tv = pair
    with torch.inference_mode():
        assert_same(ours(images()), tv([x / 255 for x in images()]))
        image = images()[1]
        assert_same(ours([image[:, :64, :128]]), tv([image[:, :64, :128] / 255]))


def test_converter_tool_writes_a_checkpoint_the_tools_load(pair, tmp_path):
    ours, tv = pair
    source, target = tmp_path / "tv.pth", tmp_path / "out" / "model_final.pth"
    torch.save(tv.state_dict(), source)
    tool = os.path.join(ROOT, "tools", "convert_torchvision_detector.py")
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = subprocess.run(
        [sys.executable, tool, str(source), str(target)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    model, meta = load_detector(fpn_config(), str(target), torch.device("cpu"))
    assert meta["class_names"] == [f"class_{k}" for k in range(1, K + 1)]
    assert meta["label_to_category"] == {k: k for k in range(1, K + 1)}
    for key, value in ours.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    again = subprocess.run(
        [sys.executable, tool, str(source), str(target)], capture_output=True, text=True, env=env
    )
    assert (
        again.returncode == 2 and again.stderr.strip().startswith("error:") and "--overwrite" in again.stderr
    )
    bad = tmp_path / "not_a_detector.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    run = subprocess.run(
        [sys.executable, tool, str(bad), str(tmp_path / "x.pth")], capture_output=True, text=True, env=env
    )
    assert run.returncode == 2 and "not a torchvision detection state_dict" in run.stderr
    assert "Traceback" not in run.stderr


def test_c4_only_backbones_are_refused_in_one_line():
    cfg = ModelConfig()
    cfg.neck, cfg.backbone.name, cfg.roi_heads.pooler = "fpn", "vgg16", "roi_align"
    with pytest.raises(ConfigError, match="ResNet-family backbone") as e:
        build_detector(cfg, 3)
    assert "\n" not in str(e.value) and "vgg16" in str(e.value)


def test_fpn_config_errors():
    cfg = fpn_config().model
    cfg.rpn.anchor_sizes = [32.0, 64.0, 128.0]
    with pytest.raises(ConfigError, match="one anchor size per level"):
        build_detector(cfg, 3)
    cfg = fpn_config(["model.roi_heads.pooler=roi_pool"]).model
    with pytest.raises(ConfigError, match="roi_align"):
        build_detector(cfg, 3)


def test_se_resnet_and_fast_rcnn_with_fpn():
    cfg = fpn_config(["model.backbone.name=se_resnet18", "model.backbone.options={width: 8}"]).model
    cfg.fpn.out_channels, cfg.fpn.representation_size = 16, 32
    model = build_detector(cfg, 3).eval()
    with torch.inference_mode():
        out = model([torch.rand(3, 64, 80) * 255])
    assert set(out[0]) == {"boxes", "labels", "scores"}
    cfg.type = "fast_rcnn"
    fast = build_detector(cfg, 3).eval()
    assert fast.needs_proposals and list(fast.backbone.output_shape()) == ["s4", "s8", "s16", "s32"]
    with torch.inference_mode():
        out = fast(
            [torch.rand(3, 64, 80) * 255], proposals=[torch.tensor([[0.0, 0, 30, 40], [10, 10, 60, 50]])]
        )
    assert out[0]["boxes"].shape[1] == 4
