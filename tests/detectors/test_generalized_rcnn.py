import pytest
import torch

LOSS_KEYS = {"loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box"}


def test_training_returns_the_four_losses_for_a_batch_of_different_sizes(make_detector, two_images):
    torch.manual_seed(0)
    model = make_detector().train()
    images, targets = two_images
    losses = model(images, targets)
    assert set(losses) == LOSS_KEYS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and all(torch.isfinite(g).all() for g in grads)


def test_images_without_objects(make_detector, two_images):
    torch.manual_seed(0)
    model = make_detector().train()
    images, targets = two_images
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = model(images, [empty, empty])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_rpn_box"] == 0 and losses["loss_box"] == 0
    assert losses["loss_rpn_cls"] > 0 and losses["loss_cls"] > 0
    losses = model(images, [targets[0], empty])  # mixed batch
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_box"] > 0


def test_crowd_and_empty_boxes_are_left_out_of_training(make_detector, draw_image):
    torch.manual_seed(0)
    model = make_detector().train()
    image, target = draw_image(64, 64, [((10, 10, 40, 40), 1)])
    target["boxes"] = torch.cat([target["boxes"], torch.tensor([[5.0, 5.0, 5.0, 20.0]])])  # zero width
    target["labels"] = torch.tensor([1, 2])
    target["iscrowd"] = torch.tensor([1, 0])
    cleaned = model.training_targets([image], [target])
    assert cleaned[0]["boxes"].shape == (0, 4)
    assert all(torch.isfinite(v) for v in model([image], [target]).values())


def test_eval_returns_detections_in_each_image_pixels(make_detector, two_images):
    model = make_detector().eval()
    images, _ = two_images
    with torch.no_grad():
        dets = model(images)
    assert len(dets) == 2
    for det, image in zip(dets, images):
        assert set(det) == {"boxes", "labels", "scores"}
        boxes = det["boxes"]
        assert boxes.dtype == torch.float32 and det["labels"].dtype == torch.int64
        assert (boxes[:, 2] <= image.shape[2]).all() and (boxes[:, 3] <= image.shape[1]).all()
        assert (det["scores"][:-1] >= det["scores"][1:]).all()


def test_target_validation_names_the_image(make_detector, two_images):
    model = make_detector().train()
    images, targets = two_images
    bad = [targets[0], {"boxes": targets[1]["boxes"], "labels": torch.tensor([3]), "image_id": 42}]
    with pytest.raises(ValueError, match="image_id=42"):
        model(images, bad)
    with pytest.raises(ValueError, match="one target per image"):
        model(images)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        model([torch.zeros(1, 32, 32)], targets[:1])


def test_padding_is_a_multiple_of_the_stride_and_keeps_coordinates(make_detector):
    model = make_detector()
    images = [torch.full((3, 30, 41), 255.0), torch.zeros(3, 50, 20)]
    batch, sizes = model.preprocess(images)
    assert batch.shape == (2, 3, 56, 48) and sizes == [(30, 41), (50, 20)]
    expected = (255.0 - model.pixel_mean) / model.pixel_std
    torch.testing.assert_close(batch[0, :, :30, :41], expected.expand(3, 30, 41))
    assert (batch[0, :, 30:] == 0).all() and (batch[1, :, :, 20:] == 0).all()
    model.size_divisibility = 32
    assert model.preprocess(images)[0].shape[-2:] == (64, 64)


def test_fast_rcnn_takes_proposals_from_targets_and_argument(make_detector, two_images):
    torch.manual_seed(0)
    model = make_detector(rpn=False).train()
    images, targets = two_images
    targets = [dict(t, proposals=t["boxes"] + 2.0) for t in targets]
    losses = model(images, targets)
    assert set(losses) == {"loss_cls", "loss_box"} and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        dets = model(images, proposals=[t["proposals"] for t in targets])
        assert len(dets) == 2
        with pytest.raises(ValueError, match="needs proposals"):
            model(images)
        empty = model(images, proposals=[torch.zeros(0, 4), torch.zeros(0, 4)])
    assert all(len(d["boxes"]) == 0 for d in empty)


def test_faster_rcnn_rejects_external_proposals(make_detector, two_images):
    model = make_detector().eval()
    with pytest.raises(ValueError, match="has an RPN"):
        model(two_images[0], proposals=[torch.zeros(0, 4)] * 2)


def test_fixed_seed_losses_are_reproducible_and_pinned(make_detector, two_images):
    """The losses at initialisation and after three SGD steps, pinned to detect unintended changes to
    initialisation, matching, sampling or the losses (recompute the numbers when a change is intended)."""

    def run() -> list[dict[str, float]]:
        torch.manual_seed(0)
        model = make_detector().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        history = []
        for _ in range(4):
            losses = model(*two_images)
            history.append({k: v.item() for k, v in losses.items()})
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        return [history[0], history[-1]]

    first, second = run(), run()
    assert first == second
    for got, pinned in zip(first, PINNED_LOSSES):
        assert set(got) == set(pinned)
        for key, value in pinned.items():
            assert got[key] == pytest.approx(value, rel=2e-3, abs=1e-5), key


PINNED_LOSSES: list[dict[str, float]] = [
    {"loss_rpn_cls": 0.693176, "loss_rpn_box": 0.00380714, "loss_cls": 1.099893, "loss_box": 0.0585384},
    {"loss_rpn_cls": 0.686957, "loss_rpn_box": 0.00378988, "loss_cls": 1.038727, "loss_box": 0.163636},
]
