"""A tiny detector overfits two synthetic images in a few seconds: the end-to-end check that training
signals, proposals and postprocessing fit together."""

import pytest
import torch

from rcnn.ops.boxes import box_iou


@pytest.fixture(scope="module")
def trained(make_detector, make_config, draw_image):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and immune to a busy machine
    try:
        yield train(make_detector, make_config, draw_image)
    finally:
        torch.set_num_threads(threads)


def train(make_detector, make_config, draw_image):
    torch.manual_seed(0)
    cfg = make_config()
    cfg.roi_heads.batch_size_per_image = 16  # with half foreground: the classes are learnt in a few steps
    cfg.roi_heads.positive_fraction = 0.5
    model = make_detector(cfg=cfg).train()
    a = draw_image(64, 80, [((10, 12, 34, 40), 1), ((44, 20, 72, 46), 2)])
    b = draw_image(80, 72, [((16, 18, 46, 38), 2)])  # margins of > 3 feature cells to the right and bottom
    images, targets = [a[0], b[0]], [a[1], b[1]]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[70], gamma=0.2)
    history = []
    for _ in range(100):  # 50 steps leave the boxes half-regressed (IoU ~0.5)
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        schedule.step()
        history.append({k: v.item() for k, v in losses.items()})
    return model.eval(), images, targets, history


def test_loss_goes_down(trained):
    history = trained[3]

    def mean(key: str, steps: list[dict[str, float]]) -> float:
        return sum(h[key] for h in steps) / len(steps)

    total = [{"all": sum(h.values())} for h in history]
    assert mean("all", total[-5:]) < 0.75 * mean("all", total[:5])
    for key in ("loss_rpn_cls", "loss_cls"):  # the box losses grow first, as more foreground is found
        assert mean(key, history[-5:]) < 0.4 * mean(key, history[:5]), key


def test_detects_every_object_with_its_class(trained):
    model, images, targets, _ = trained
    with torch.no_grad():
        detections = model(images)
    for det, target in zip(detections, targets):
        for box, label in zip(target["boxes"], target["labels"]):
            of_class = det["labels"] == label
            assert of_class.any(), f"no detection of class {label.item()}"
            best = det["scores"][of_class].argmax()
            assert det["scores"][of_class][best] > 0.5
            assert box_iou(box[None], det["boxes"][of_class][best, None]).item() > 0.5


def test_padding_does_not_move_detections(trained, draw_image):
    """The same image alone and batched with a bigger one: its confident detections are the same boxes."""
    model, images, _, _ = trained
    small = images[1]  # 80 x 72
    big = draw_image(120, 136, [((70, 60, 100, 90), 1)])[0]
    with torch.no_grad():
        alone = model([small])[0]
        batched = model([big, small])[1]
    assert (alone["scores"] > 0.5).any()
    for a, b in ((alone, batched), (batched, alone)):
        for box, label, score in zip(a["boxes"], a["labels"], a["scores"]):
            if score < 0.5:
                continue
            same = (b["labels"] == label) & ((b["scores"] - score).abs() < 0.05)
            assert same.any() and box_iou(box[None], b["boxes"][same]).max() > 0.9
