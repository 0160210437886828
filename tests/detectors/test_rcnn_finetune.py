"""R-CNN fine-tuning: window labels (IoU >= 0.5), the 32 positive / 96 background mini-batch, the loss."""

from __future__ import annotations

import torch

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.rcnn2014.finetune import FinetuneModel, label_windows, sample_windows


def lenet_rcnn(num_classes: int = 2):
    cfg = ModelConfig(type="rcnn")
    cfg.backbone.name = "lenet5"
    cfg.backbone.freeze_at = 0
    cfg.rcnn.input_size, cfg.rcnn.context_padding = 32, 2
    return build_detector(cfg, num_classes)


def test_window_labels_follow_the_best_gt_at_iou_half():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    labels = torch.tensor([2, 1])
    proposals = torch.tensor(
        [
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 with gt 0 -> label 2
            [0.0, 0.0, 10.0, 4.0],  # IoU 0.4 -> background
            [21.0, 21.0, 30.0, 30.0],  # IoU 0.81 with gt 1 -> label 1
            [40.0, 40.0, 50.0, 50.0],  # nothing -> background
        ]
    )
    boxes, window_labels = label_windows(proposals, gt, labels, 0.5)
    assert torch.equal(boxes[:2], gt)  # the gt boxes are windows (positives) too
    assert window_labels.tolist() == [2, 1, 2, 0, 1, 0]
    _, none = label_windows(proposals, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    assert none.tolist() == [0, 0, 0, 0]


def test_sampler_composition():
    labels = torch.cat([torch.ones(50, dtype=torch.int64) * 3, torch.zeros(500, dtype=torch.int64)])
    pos, neg = sample_windows(labels, 32, 96, torch.Generator().manual_seed(0))
    assert len(pos) == 32 and len(neg) == 96
    assert (labels[pos] > 0).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 32 and len(set(neg.tolist())) == 96  # without replacement
    # fewer candidates than asked: all of them, never padding with the other kind
    few = torch.tensor([1, 0, 0, 2, 0])
    pos, neg = sample_windows(few, 32, 96)
    assert sorted(pos.tolist()) == [0, 3] and sorted(neg.tolist()) == [1, 2, 4]
    pos, neg = sample_windows(torch.zeros(0, dtype=torch.int64), 32, 96)
    assert pos.numel() == 0 and neg.numel() == 0
    # seeded: the same windows
    a = sample_windows(labels, 32, 96, torch.Generator().manual_seed(5))
    b = sample_windows(labels, 32, 96, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_finetune_loss_trains_the_whole_network():
    torch.manual_seed(0)
    model = lenet_rcnn()
    wrapper = FinetuneModel(model, batch_pos=4, batch_neg=12).train()
    image = torch.rand(3, 48, 64) * 255
    gt = torch.tensor([[4.0, 4.0, 24.0, 30.0]])
    proposals = torch.tensor([[5.0, 5.0, 24.0, 28.0], [30.0, 10.0, 60.0, 40.0], [0.0, 30.0, 20.0, 48.0]])
    target = {"boxes": gt, "labels": torch.tensor([2]), "proposals": proposals}
    losses = wrapper([image, image.flip(-1)], [target, target])
    assert set(losses) == {"loss_cls"} and torch.isfinite(losses["loss_cls"])
    losses["loss_cls"].backward()
    assert model.cls_score.weight.grad.abs().sum() > 0
    first_conv = next(model.backbone.parameters())
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    # no candidate windows at all: a zero loss that still backpropagates
    empty = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "proposals": torch.zeros(0, 4),
    }
    zero = wrapper([image], [empty])["loss_cls"]
    assert zero.item() == 0.0 and zero.requires_grad
