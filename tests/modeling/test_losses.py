import pytest
import torch
import torch.nn.functional as F

from rcnn.modeling.losses import fast_rcnn_losses, rpn_losses


def test_rpn_losses_use_only_sampled_anchors_and_normalise_by_their_count():
    objectness = torch.tensor([[2.0, -1.0, 5.0, 0.5]])  # (N=1, A=4)
    labels = torch.tensor([[1.0, 0.0, -1.0, 0.0]])  # anchor 2 not sampled
    pred = torch.zeros(1, 4, 4)
    target = torch.zeros(1, 4, 4)
    target[0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # positive: |1| -> smooth L1 beta 1: 0.5
    target[0, 2] = 100.0  # not sampled: must not count
    target[0, 1] = 100.0  # negative: no box loss
    losses = rpn_losses(objectness, pred, labels, target, smooth_l1_beta=1.0)
    bce = F.binary_cross_entropy_with_logits(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(losses["loss_rpn_cls"], bce)
    torch.testing.assert_close(losses["loss_rpn_box"], torch.tensor(0.5 / 3))


def test_rpn_losses_nothing_sampled_is_zero_not_nan():
    losses = rpn_losses(torch.zeros(2, 3), torch.zeros(2, 3, 4), -torch.ones(2, 3), torch.zeros(2, 3, 4), 0.1)
    assert losses["loss_rpn_cls"] == 0 and losses["loss_rpn_box"] == 0


@pytest.mark.parametrize("background_deltas", [False, True])
def test_fast_rcnn_box_loss_reads_the_gt_class_deltas_of_foreground_only(background_deltas):
    k = 3
    c = k + int(background_deltas)
    logits = torch.zeros(3, k + 1)
    deltas = torch.zeros(3, c, 4)
    labels = torch.tensor([2, 0, 3])
    column = labels - (0 if background_deltas else 1)
    deltas[0, column[0]] = torch.tensor([0.5, 0.0, 0.0, 0.0])  # gt class of RoI 0: loss 0.5 * 0.5**2
    deltas[0, (column[0] + 1) % c] = 9.0  # another class: ignored
    deltas[1] = 9.0  # background RoI: ignored
    targets = torch.zeros(3, 4)
    losses = fast_rcnn_losses(logits, deltas.reshape(3, -1), labels, targets, smooth_l1_beta=1.0)
    torch.testing.assert_close(losses["loss_box"], torch.tensor(0.125 / 3))
    torch.testing.assert_close(losses["loss_cls"], torch.log(torch.tensor(4.0)))


def test_fast_rcnn_losses_empty_batch_is_zero():
    losses = fast_rcnn_losses(
        torch.zeros(0, 3), torch.zeros(0, 8), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4), 1.0
    )
    assert losses["loss_cls"] == 0 and losses["loss_box"] == 0


def test_losses_have_gradients():
    logits = torch.randn(4, 3, requires_grad=True)
    deltas = torch.randn(4, 8, requires_grad=True)
    losses = fast_rcnn_losses(logits, deltas, torch.tensor([1, 2, 0, 1]), torch.randn(4, 4), 1.0)
    sum(losses.values()).backward()
    assert logits.grad.abs().sum() > 0 and deltas.grad[2].abs().sum() == 0  # background row: no box grad
