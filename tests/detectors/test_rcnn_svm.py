"""R-CNN's linear SVMs: separable toy data, hard-negative mining (only negatives scored > -1 are added,
all of them, once), determinism."""

from __future__ import annotations

import torch

from rcnn.detectors.rcnn2014.svm import HardNegativeTrainer, hard_negatives, train_linear_svm, train_svms


def toy(n_pos: int = 40, n_neg: int = 400, dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives around +2 on the first axis, negatives around -2: separable with a wide margin."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n_pos, dim, generator=g) * 0.3
    neg = torch.randn(n_neg, dim, generator=g) * 0.3
    pos[:, 0] += 2.0
    neg[:, 0] -= 2.0
    return pos, neg


def test_svm_separates_separable_features():
    pos, neg = toy()
    w, b = train_linear_svm(pos, neg, C=1.0)
    assert (pos @ w + b > 0).all() and (neg @ w + b < 0).all()
    assert w[0] > 5 * w[1:].abs().max()  # the separating direction
    # with a large C the margin constraints hold: y * f >= ~1 for (almost) every example
    w, b = train_linear_svm(pos, neg, C=100.0)
    assert (pos @ w + b).min() > 0.9 and (neg @ w + b).max() < -0.9


def test_svm_is_deterministic_and_weights_positives():
    pos, neg = toy(seed=1)
    w1, b1 = train_linear_svm(pos, neg, C=0.01)
    w2, b2 = train_linear_svm(pos.clone(), neg.clone(), C=0.01)
    assert torch.equal(w1, w2) and b1 == b2
    # heavier positives push the boundary away from them: positives score higher
    w3, b3 = train_linear_svm(pos, neg, C=0.01, pos_weight=10.0)
    assert (pos @ w3 + b3).mean() > (pos @ w1 + b1).mean()


def test_hard_negatives_are_those_above_minus_one():
    scores = torch.tensor([-3.0, -1.0, -0.99, 0.5, -1.5, 2.0])
    assert hard_negatives(scores).tolist() == [2, 3, 5]


def stream(chunks: list[dict[str, torch.Tensor]]):
    return lambda: iter(chunks)


def make_chunks(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Two classes in 2-D: class 1 around (3, 0), class 2 around (0, 3); background around the origin
    with a tail of hard ones near each class. gt rows are the positives; ``ious`` mark the negatives."""
    g = torch.Generator().manual_seed(seed)
    chunks = []
    for _ in range(3):
        gt1 = torch.randn(5, 2, generator=g) * 0.3 + torch.tensor([3.0, 0.0])
        gt2 = torch.randn(5, 2, generator=g) * 0.3 + torch.tensor([0.0, 3.0])
        bg = torch.randn(200, 2, generator=g) * 0.6
        hard = torch.randn(20, 2, generator=g) * 0.3 + torch.tensor([1.8, 1.8])
        features = torch.cat([gt1, gt2, bg, hard])
        n = features.shape[0]
        is_gt = torch.arange(n) < 10
        gt_labels = torch.zeros(n, dtype=torch.int64)
        gt_labels[:5], gt_labels[5:10] = 1, 2
        ious = torch.zeros(n, 2)
        ious[:5, 0], ious[5:10, 1] = 1.0, 1.0
        ious[10:15, 0] = 0.4  # overlaps class 1 between 0.3 and 1: neither positive nor negative
        chunks.append({"features": features, "is_gt": is_gt, "gt_labels": gt_labels, "ious": ious})
    return chunks


def test_mining_adds_exactly_the_uncached_negatives_scored_above_minus_one():
    chunks = make_chunks()
    trainer = HardNegativeTrainer(stream(chunks), 2, C=1.0, init_negatives=30, seed=0)
    trainer.initial_pass()
    assert [torch.cat(c.positives).shape[0] for c in trainer.caches] == [15, 15]
    assert [c.negatives.shape[0] for c in trainer.caches] == [30, 30]
    # the initial class-1 subset holds no row with IoU 0.4 with class 1 (not a negative)
    ids = trainer.caches[0].negative_ids
    assert (
        not torch.isin(ids % 230, torch.arange(10, 15)).any()
        and not torch.isin(ids % 230, torch.arange(5)).any()
    )
    trainer.fit(0)
    w, b = trainer.weights.clone(), trainer.biases.clone()
    before = [set(c.negative_ids.tolist()) for c in trainer.caches]  # after eviction
    added = trainer.mine(1)
    features = torch.cat([c["features"] for c in chunks])
    negative = torch.cat([c["ious"] for c in chunks]) < 0.3  # (R, 2)
    for c, cache in enumerate(trainer.caches):
        scores = features @ w[c] + b[c]
        new = set(cache.negative_ids.tolist()) - before[c]
        expected = {i for i in range(features.shape[0]) if negative[i, c] and scores[i] > -1} - before[c]
        assert new == expected and added[c] == len(expected) > 0
        assert all(scores[i] > -1 for i in new)
        assert len(set(cache.negative_ids.tolist())) == cache.negative_ids.numel()  # no duplicates
    assert trainer.mine(2) == [0, 0]  # nothing new with the same SVMs


def test_train_svms_end_to_end_and_deterministic():
    chunks = make_chunks(seed=3)
    w1, b1, log = train_svms(stream(chunks), 2, C=1.0, init_negatives=20, rounds=3, seed=0)
    w2, b2, _ = train_svms(stream(chunks), 2, C=1.0, init_negatives=20, rounds=3, seed=0)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert log[0]["round"] == 0 and any(entry["added"] > 0 for entry in log if entry["round"] == 1)
    features = torch.cat([c["features"] for c in chunks])
    scores = features @ w1.t() + b1  # (R, 2)
    gt_labels = torch.cat([c["gt_labels"] for c in chunks])
    is_gt = torch.cat([c["is_gt"] for c in chunks])
    for c in range(2):
        assert (scores[is_gt & (gt_labels == c + 1), c] > 0).all()
    # the hard background near (1.8, 1.8) ends up below zero for both classes after mining
    hard = torch.cat([torch.arange(210, 230) + 230 * k for k in range(3)])
    assert (scores[hard] < 0).float().mean() > 0.9
