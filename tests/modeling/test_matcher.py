import torch

from rcnn.modeling.matcher import Matcher


def test_thresholds():
    iou = torch.tensor([[0.9, 0.5, 0.2, 0.7], [0.1, 0.65, 0.29, 0.0]])  # (G=2, P=4)
    matches = Matcher(0.7, 0.3)(iou)
    assert matches.tolist() == [0, -2, -1, 0]  # 0.65 (best for p1) is between 0.3 and 0.7


def test_low_quality_matches_make_each_gt_best_anchor_positive():
    iou = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.0],
            [0.0, 0.4, 0.4, 0.2],  # best IoU 0.4 below 0.7: tied anchors 1 and 2 become positives
            [0.0, 0.0, 0.0, 0.0],  # a box overlapping nothing makes nothing positive
        ]
    )
    assert Matcher(0.7, 0.3, allow_low_quality_matches=False)(iou).tolist() == [0, -2, -2, -1]
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou).tolist() == [0, 1, 1, -1]


def test_low_quality_match_takes_the_anchor_best_gt():
    # anchor 0 is gt 0's best (0.5) but overlaps gt 1 more (0.6): it is matched to gt 1, its own best
    iou = torch.tensor([[0.5, 0.0], [0.6, 0.1]])
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou).tolist() == [1, -1]


def test_empty_ground_truth_is_all_background():
    matches = Matcher(0.7, 0.3, True)(torch.zeros(0, 5))
    assert matches.tolist() == [-1] * 5 and matches.dtype == torch.int64


def test_no_predictions():
    assert Matcher(0.5, 0.5)(torch.zeros(3, 0)).shape == (0,)
