"""Top-k errors and centre-crop / 10-crop classifier evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from rcnn.evaluation.classification import evaluate_classifier, topk_errors


class PixelLogits(nn.Module):
    """Logits read straight from the image: channel c at pixel (0, 0) is the logit of class c."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: Tensor) -> Tensor:
        return x[:, : self.num_classes, 0, 0]


def test_topk_errors_hand_made_logits():
    logits = torch.tensor(
        [
            [0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0],  # target 1: top-1 hit
            [0.9, 0.1, 0.5, 0.4, 0.3, 0.2, 0.0],  # target 1: 6th best -> top-5 miss
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.0, 0.1],  # target 4: 5th best -> top-5 hit, top-1 miss
            [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # target 3: top-1 hit
        ]
    )
    targets = torch.tensor([1, 1, 4, 3])
    errs = topk_errors(logits, targets)
    assert set(errs) == {"top1_err", "top5_err"}
    assert errs["top1_err"] == pytest.approx(2 / 4)  # rows 0 and 3 right
    assert errs["top5_err"] == pytest.approx(1 / 4)  # row 1 wrong
    assert topk_errors(logits, targets, ks=(1, 2, 7)) == pytest.approx(
        {"top1_err": 0.5, "top2_err": 0.5, "top7_err": 0.0}
    )


def test_topk_with_fewer_classes_than_k_uses_all_classes():
    logits = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    targets = torch.tensor([2, 0])  # both ranked last
    errs = topk_errors(logits, targets)
    assert errs["top1_err"] == 1.0
    assert errs["top5_err"] == 0.0  # min(5, 3) = 3 guesses cover every class


def test_topk_errors_rejects_bad_shapes():
    with pytest.raises(ValueError, match="targets"):
        topk_errors(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one"):
        topk_errors(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))


def _loader(images: Tensor, targets: Tensor, batch_size: int):
    return [
        (images[i : i + batch_size], targets[i : i + batch_size]) for i in range(0, len(images), batch_size)
    ]


def test_evaluate_centre_crop_matches_topk_and_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(10, 6)
    targets = torch.randint(0, 6, (10,))
    images = torch.zeros(10, 6, 2, 2)
    images[:, :, 0, 0] = logits
    model = PixelLogits(6).train()
    metrics = evaluate_classifier(model, _loader(images, targets, 4), "cpu")
    expected = topk_errors(logits, targets)
    assert metrics["top1_err"] == pytest.approx(expected["top1_err"])
    assert metrics["top5_err"] == pytest.approx(expected["top5_err"])
    assert metrics["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, targets)), rel=1e-5)
    assert metrics["num_images"] == 10
    assert model.training  # mode restored


def test_ten_crop_averages_softmax_not_logits():
    # One confident crop for class 0, nine mild crops for class 1: averaging logits picks class 0
    # ([1.0, 0.9]), averaging the softmax picks class 1 (0.342 vs 0.658).
    crops = torch.zeros(1, 10, 2, 2, 2)
    crops[0, 0, :, 0, 0] = torch.tensor([10.0, 0.0])
    crops[0, 1:, :, 0, 0] = torch.tensor([0.0, 1.0])
    model = PixelLogits(2)
    metrics = evaluate_classifier(model, [(crops, torch.tensor([1]))], "cpu", ten_crop=True)
    assert metrics["top1_err"] == 0.0
    p1 = (1 / (1 + math.exp(10)) + 9 / (1 + math.exp(-1))) / 10
    assert metrics["loss"] == pytest.approx(-math.log(p1), rel=1e-5)
    wrong = evaluate_classifier(model, [(crops, torch.tensor([0]))], "cpu", ten_crop=True)
    assert wrong["top1_err"] == 1.0


def test_ten_crop_flag_must_match_batch_shape():
    model = PixelLogits(2)
    with pytest.raises(ValueError, match="ten_crop"):
        evaluate_classifier(model, [(torch.zeros(1, 2, 2, 2), torch.tensor([0]))], "cpu", ten_crop=True)
    with pytest.raises(ValueError, match="ten_crop"):
        evaluate_classifier(model, [(torch.zeros(1, 10, 2, 2, 2), torch.tensor([0]))], "cpu")
