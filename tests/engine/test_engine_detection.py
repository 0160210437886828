"""load_detector: a saved detector rebuilt from its config, with the truncated SVD of the region head's
fully connected layers when model.roi_heads.svd_rank asks for it."""

import pytest
import torch

from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.modeling.svd import TruncatedSVDLinear
from rcnn.tasks.detection import load_detector


def lenet_config() -> DetectionConfig:
    cfg = DetectionConfig()
    cfg.model.type = "fast_rcnn"
    cfg.model.backbone.name = "lenet5"  # a fully connected region head of 400 -> 120 -> 84
    cfg.model.roi_heads.score_thresh = 0.0
    return cfg


def test_svd_rank_factors_the_fc_layers_at_load_time(tmp_path):
    cfg = lenet_config()
    torch.manual_seed(0)
    model = build_detector(cfg.model, 3).eval()
    path = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict(), "extra": {"metadata": {"class_names": ["a", "b", "c"]}}}, path)

    plain, meta = load_detector(cfg, str(path), torch.device("cpu"))
    assert meta["class_names"] == ["a", "b", "c"]
    assert not any(isinstance(m, TruncatedSVDLinear) for m in plain.modules())

    cfg.model.roi_heads.svd_rank = 16
    factored, _ = load_detector(cfg, str(path), torch.device("cpu"))
    layers = [m for m in factored.roi_heads.box_head.modules() if isinstance(m, TruncatedSVDLinear)]
    assert layers and not factored.training
    assert sum(p.numel() for p in factored.parameters()) < sum(p.numel() for p in plain.parameters())
    image = torch.rand(3, 64, 64) * 255
    proposals = [torch.tensor([[4.0, 4, 40, 40], [20, 10, 60, 50], [0, 0, 63, 63]])]
    with torch.no_grad():
        a, b = plain([image], proposals=proposals)[0], factored([image], proposals=proposals)[0]
    assert len(a["scores"]) and len(b["scores"])  # both detect; the rank-16 head approximates the full one
    assert not torch.equal(a["scores"], b["scores"])


def test_svd_rank_behind_a_convolutional_head_is_an_error(tmp_path):
    cfg = lenet_config()
    cfg.model.backbone.name, cfg.model.backbone.options = "resnet18", {"width": 8}
    model = build_detector(cfg.model, 2)
    path = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict()}, path)
    cfg.model.roi_heads.svd_rank = 8
    with pytest.raises(ValueError, match="svd_rank"):
        load_detector(cfg, str(path), torch.device("cpu"))
