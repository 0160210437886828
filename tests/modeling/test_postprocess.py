import math

import pytest
import torch

from rcnn.modeling.box_coder import BoxCoder
from rcnn.modeling.postprocess import fast_rcnn_inference


def logits_for(probs: list[list[float]]) -> torch.Tensor:
    return torch.log(torch.tensor(probs))


def run(logits, proposals, sizes, **kwargs):
    deltas = torch.zeros(logits.shape[0], 4 * (logits.shape[1] - 1))  # boxes = proposals
    return fast_rcnn_inference(logits, deltas, proposals, sizes, BoxCoder((10.0, 10.0, 5.0, 5.0)), **kwargs)


def test_per_class_nms_threshold_and_limit():
    # three overlapping proposals: 0 and 1 are class 1 (IoU 0.8), 2 is the same place but class 2
    proposals = [
        torch.tensor(
            [
                [10.0, 10.0, 50.0, 50.0],
                [12.0, 10.0, 52.0, 50.0],
                [10.0, 10.0, 50.0, 50.0],
                [0.0, 0.0, 5.0, 5.0],
            ]
        )
    ]
    logits = logits_for([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.97, 0.02, 0.01]])
    (det,) = run(logits, proposals, [(60, 60)], score_thresh=0.05, nms_thresh=0.3)
    # class 1: proposal 1 is suppressed by proposal 0; class 2: proposals 0 and 1 (0.1) by proposal 2;
    # the class-2 box is not suppressed by the class-1 box in the same place; proposal 3 is below 0.05
    assert det["labels"].tolist() == [1, 2]
    torch.testing.assert_close(det["scores"], torch.tensor([0.8, 0.8]))
    torch.testing.assert_close(det["boxes"], proposals[0][[0, 2]])
    assert det["labels"].dtype == torch.int64
    (det,) = run(logits, proposals, [(60, 60)], detections_per_img=1)
    assert len(det["scores"]) == 1


def test_boxes_are_clipped_and_split_per_image():
    proposals = [torch.tensor([[-5.0, -5.0, 30.0, 30.0]]), torch.tensor([[10.0, 10.0, 90.0, 40.0]])]
    logits = logits_for([[0.1, 0.9], [0.1, 0.9]])
    dets = run(logits, proposals, [(20, 25), (50, 60)])
    torch.testing.assert_close(dets[0]["boxes"], torch.tensor([[0.0, 0.0, 25.0, 20.0]]))
    torch.testing.assert_close(dets[1]["boxes"], torch.tensor([[10.0, 10.0, 60.0, 40.0]]))


def test_no_proposals():
    (det,) = run(torch.zeros(0, 3), [torch.zeros(0, 4)], [(10, 10)])
    assert det["boxes"].shape == (0, 4) and det["scores"].shape == (0,)


def test_rejects_unknown_soft_nms():
    with pytest.raises(ValueError, match="soft_nms"):
        run(torch.zeros(1, 2), [torch.zeros(1, 4)], [(10, 10)], soft_nms="fancy")


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_decays_instead_of_removing(method):
    proposals = [torch.tensor([[10.0, 10.0, 50.0, 50.0], [12.0, 10.0, 52.0, 50.0], [60.0, 60.0, 90.0, 90.0]])]
    logits = logits_for([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    (hard,) = run(logits, proposals, [(100, 100)], nms_thresh=0.3)
    (soft,) = run(logits, proposals, [(100, 100)], nms_thresh=0.3, soft_nms=method, soft_nms_sigma=0.5)
    assert len(hard["scores"]) == 2 and len(soft["scores"]) == 3
    iou = 38.0 / 42.0
    decayed = 0.8 * (1 - iou) if method == "linear" else 0.8 * math.exp(-(iou**2) / 0.5)
    torch.testing.assert_close(soft["scores"], torch.tensor([0.9, 0.7, decayed]))
    assert soft["labels"].tolist() == [1, 1, 1]
    torch.testing.assert_close(soft["boxes"][2], proposals[0][1])
