import pytest
import torch
from torch import nn

from rcnn.modeling.box_coder import BoxCoder
from rcnn.modeling.matcher import Matcher
from rcnn.modeling.roi_heads import FastRCNNPredictor, RoIHeads
from rcnn.modeling.sampler import BalancedPositiveNegativeSampler
from rcnn.ops.roi import RoIPool

K = 3


def make_heads(bg_lo: float = 0.0, add_gt: bool = True, batch: int = 32, **kwargs) -> RoIHeads:
    box_head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 16), nn.ReLU())
    return RoIHeads(
        RoIPool(4, 1.0 / 8),
        box_head,
        FastRCNNPredictor(16, K),
        BoxCoder((10.0, 10.0, 5.0, 5.0)),
        Matcher(0.5, 0.5),
        BalancedPositiveNegativeSampler(batch, 0.25),
        bg_iou_thresh_lo=bg_lo,
        add_gt_as_proposals=add_gt,
        **kwargs,
    )


def random_proposals(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size * 0.7
    wh = torch.rand(n, 2, generator=g) * size * 0.3 + 4
    return torch.cat([xy, xy + wh], dim=1)


def test_predictor_shapes_and_init():
    p = FastRCNNPredictor(64, K)
    scores, deltas = p(torch.randn(5, 64))
    assert scores.shape == (5, K + 1) and deltas.shape == (5, 4 * K)
    assert FastRCNNPredictor(64, K, background_deltas=True)(torch.randn(5, 64))[1].shape == (5, 4 * (K + 1))
    assert 0.005 < p.cls_score.weight.std() < 0.02 and p.bbox_pred.weight.std() < 0.002
    assert p.cls_score.bias.abs().sum() == 0


def test_sampling_fractions_labels_and_targets():
    torch.manual_seed(0)
    heads = make_heads(batch=32)
    gt = torch.tensor([[10.0, 10.0, 40.0, 40.0], [60.0, 20.0, 90.0, 60.0]])
    near = gt.repeat(20, 1) + torch.randn(40, 4)  # many foreground candidates
    props = torch.cat([near, random_proposals(200, 100, 0)])
    targets = [{"boxes": gt, "labels": torch.tensor([1, 3])}]
    rois, labels, deltas = heads.sample_proposals([props], targets)
    assert len(rois[0]) == 32 and labels.shape == (32,) and deltas.shape == (32, 4)
    assert (labels > 0).sum() == 8  # 25% of 32
    assert set(labels[labels > 0].tolist()) <= {1, 3}
    fg = labels > 0
    decoded = heads.box_coder.decode(deltas[fg], rois[0][fg])
    assert torch.isclose(decoded[:, None], gt[None], atol=1e-3).all(-1).any(-1).all()


def test_background_lower_threshold_ignores_far_rois():
    heads = make_heads(bg_lo=0.1, add_gt=False, batch=64)
    gt = torch.tensor([[0.0, 0.0, 20.0, 20.0]])
    props = torch.tensor([[0.0, 0.0, 20.0, 30.0], [10.0, 10.0, 30.0, 30.0], [60.0, 60.0, 80.0, 80.0]])
    rois, labels, _ = heads.sample_proposals([props], [{"boxes": gt, "labels": torch.tensor([2])}])
    # IoU: 0.667 (fg), 0.143 (bg in [0.1, 0.5)), 0 (ignored)
    assert labels.tolist() in ([2, 0], [0, 2])
    assert not (rois[0] == props[2]).all(-1).any()


def test_training_losses_and_empty_ground_truth():
    torch.manual_seed(0)
    heads = make_heads().train()
    features = torch.randn(2, 8, 12, 12, requires_grad=True)
    props = [random_proposals(50, 96, 1), random_proposals(30, 80, 2)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    dets, losses = heads(features, props, [(96, 96), (80, 80)], targets)
    assert dets == [] and set(losses) == {"loss_cls", "loss_box"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert features.grad.abs().sum() > 0

    empty = [targets[1], targets[1]]
    _, losses = heads(features, props, [(96, 96), (80, 80)], empty)
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_cls"] > 0 and losses["loss_box"] == 0


def test_eval_detections_format():
    heads = make_heads(score_thresh=0.0, detections_per_img=7).eval()
    props = [random_proposals(20, 96, 1), torch.zeros(0, 4)]
    dets, losses = heads(torch.randn(2, 8, 12, 12), props, [(96, 96), (96, 96)])
    assert losses == {} and len(dets) == 2
    assert 0 < len(dets[0]["boxes"]) <= 7 and len(dets[1]["boxes"]) == 0
    assert ((dets[0]["labels"] >= 1) & (dets[0]["labels"] <= K)).all()


def test_rejects_unknown_soft_nms():
    with pytest.raises(ValueError, match="soft_nms"):
        make_heads(soft_nms="hard")
