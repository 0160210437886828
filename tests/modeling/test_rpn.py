import pytest
import torch

from rcnn.modeling.anchors import AnchorGenerator
from rcnn.modeling.box_coder import BoxCoder
from rcnn.modeling.matcher import Matcher
from rcnn.modeling.rpn import RegionProposalNetwork, RPNHead
from rcnn.modeling.sampler import BalancedPositiveNegativeSampler


def make_rpn(channels: int = 8, ignore_cross_boundary: bool = True, **kwargs) -> RegionProposalNetwork:
    anchors = AnchorGenerator([16.0, 32.0], [0.5, 1.0, 2.0], stride=8)
    options = dict(
        pre_nms_top_n_train=300,
        post_nms_top_n_train=50,
        pre_nms_top_n_test=200,
        post_nms_top_n_test=20,
        min_size=2.0,
    )
    options.update(kwargs)
    return RegionProposalNetwork(
        anchors,
        RPNHead(channels, anchors.num_anchors_per_location),
        BoxCoder(),
        Matcher(0.7, 0.3, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(256, 0.5),
        ignore_cross_boundary=ignore_cross_boundary,
        **options,
    )


def test_head_shapes_and_init():
    head = RPNHead(16, 6)
    obj, deltas = head(torch.randn(2, 16, 5, 7))
    assert obj.shape == (2, 6, 5, 7) and deltas.shape == (2, 24, 5, 7)
    assert head.cls_logits.weight.std() < 0.02 and head.bbox_pred.bias.abs().sum() == 0


def test_training_shapes_losses_and_detached_proposals():
    torch.manual_seed(0)
    rpn = make_rpn().train()
    features = torch.randn(2, 8, 8, 10, requires_grad=True)  # padded batch of 64 x 80
    sizes = [(64, 80), (60, 50)]
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 40.0, 40.0]])},
        {"boxes": torch.tensor([[5.0, 5.0, 30.0, 20.0]])},
    ]
    proposals, losses = rpn(features, sizes, targets)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_box"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_rpn_box"] > 0
    assert len(proposals) == 2
    for p, (h, w) in zip(proposals, sizes):
        assert p.shape[1] == 4 and 0 < len(p) <= 50 and not p.requires_grad
        assert (p[:, 0] >= 0).all() and (p[:, 2] <= w).all() and (p[:, 3] <= h).all()
        assert ((p[:, 2] - p[:, 0]) >= 2.0).all() and ((p[:, 3] - p[:, 1]) >= 2.0).all()
    sum(losses.values()).backward()
    assert rpn.head.conv.weight.grad.abs().sum() > 0


def test_eval_uses_test_top_n_and_returns_no_losses():
    rpn = make_rpn().eval()
    proposals, losses = rpn(torch.randn(1, 8, 8, 8), [(64, 64)])
    assert losses == {} and len(proposals[0]) <= 20


def test_empty_ground_truth_gives_finite_losses_and_zero_box_loss():
    rpn = make_rpn().train()
    targets = [{"boxes": torch.zeros(0, 4)}, {"boxes": torch.zeros(0, 4)}]
    _, losses = rpn(torch.randn(2, 8, 8, 8), [(64, 64), (64, 64)], targets)
    assert torch.isfinite(losses["loss_rpn_cls"]) and losses["loss_rpn_cls"] > 0
    assert losses["loss_rpn_box"] == 0


def test_labels_sampling_and_cross_boundary_anchors():
    torch.manual_seed(0)
    rpn = make_rpn()
    anchors = rpn.anchor_generator(torch.zeros(1, 1, 8, 8))  # 64 x 64 image
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]])}]
    labels, target_deltas = rpn.label_anchors(anchors, targets, [(64, 64)])
    assert labels.shape == (1, len(anchors)) and target_deltas.shape == (1, len(anchors), 4)
    crossing = (anchors[:, 0] < 0) | (anchors[:, 1] < 0) | (anchors[:, 2] > 64) | (anchors[:, 3] > 64)
    assert crossing.any() and (labels[0, crossing] == -1).all()
    positive = labels[0] == 1
    assert positive.sum() >= 1 and ((labels[0] == 0).sum() + positive.sum()) <= 256
    # the positives' targets decode back to the ground-truth box
    decoded = rpn.box_coder.decode(target_deltas[0, positive], anchors[positive])
    torch.testing.assert_close(decoded, targets[0]["boxes"].expand_as(decoded))

    keep_all = make_rpn(ignore_cross_boundary=False)
    labels_all, _ = keep_all.label_anchors(anchors, targets, [(64, 64)])
    assert (labels_all[0, crossing] >= 0).any()


def test_box_only_crossing_anchors_cover_still_gets_no_positive_from_them():
    # with every anchor near the box crossing the boundary, the best *inside* anchor is the low-quality match
    rpn = make_rpn()
    anchors = rpn.anchor_generator(torch.zeros(1, 1, 4, 4))  # 32 x 32 image
    labels, _ = rpn.label_anchors(anchors, [{"boxes": torch.tensor([[0.0, 0.0, 12.0, 30.0]])}], [(32, 32)])
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= 32) & (anchors[:, 3] <= 32)
    assert (labels[0] == 1).any() and inside[labels[0] == 1].all()


@pytest.mark.parametrize("training", [True, False])
def test_batch_of_one_matches_single_image_proposals(training):
    torch.manual_seed(0)
    rpn = make_rpn().train(training)
    features = torch.randn(1, 8, 6, 6)
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]])}]
    a, _ = rpn(features, [(48, 48)], targets)
    b, _ = rpn(torch.cat([features, features]), [(48, 48), (48, 48)], targets * 2)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(b[0], b[1])


@pytest.mark.parametrize("ties", [False, True])
def test_nms_first_k_keeps_what_full_nms_keeps_first(ties):
    from rcnn.modeling.rpn import nms_first_k
    from rcnn.ops.boxes import nms

    gen = torch.Generator().manual_seed(3)
    for _ in range(40):
        n = int(torch.randint(1, 1500, (), generator=gen))
        xy = torch.rand(n, 2, generator=gen) * 300
        boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=gen) * 120 + 1], dim=1)
        scores = torch.randn(n, generator=gen)
        if ties:
            scores = (scores * 3).round()
        scores, order = scores.sort(descending=True, stable=True)
        boxes = boxes[order]
        k = int(torch.randint(1, 400, (), generator=gen))
        threshold = float(torch.rand((), generator=gen)) * 0.9 + 0.05
        assert torch.equal(nms_first_k(boxes, scores, threshold, k), nms(boxes, scores, threshold)[:k])
