import pytest
import torch

from rcnn.modeling.sampler import BalancedPositiveNegativeSampler


def make_labels(pos: int, neg: int, ignored: int) -> torch.Tensor:
    labels = torch.cat([torch.ones(pos), torch.zeros(neg), -torch.ones(ignored)])
    return labels[torch.randperm(len(labels))]


def test_fractions_when_plenty():
    torch.manual_seed(0)
    labels = make_labels(500, 5000, 300)
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)(labels)
    assert pos.sum() == 128 and neg.sum() == 128
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert not (pos & neg).any()


def test_few_positives_filled_with_negatives():
    torch.manual_seed(0)
    labels = make_labels(10, 5000, 0)
    pos, neg = BalancedPositiveNegativeSampler(128, 0.25)(labels)
    assert pos.sum() == 10 and neg.sum() == 118


def test_few_of_both():
    labels = make_labels(3, 4, 10)
    pos, neg = BalancedPositiveNegativeSampler(64, 0.25)(labels)
    assert pos.sum() == 3 and neg.sum() == 4


def test_batched_images_sampled_independently():
    torch.manual_seed(0)
    labels = torch.stack([make_labels(500, 3000, 0), make_labels(20, 3480, 0)])  # (2, 3500)
    pos, neg = BalancedPositiveNegativeSampler(256, 0.5)(labels)
    assert pos.sum(1).tolist() == [128, 20]
    assert neg.sum(1).tolist() == [128, 236]


def test_sampling_is_random_and_roughly_uniform():
    torch.manual_seed(0)
    labels = torch.ones(100)
    sampler = BalancedPositiveNegativeSampler(20, 0.5)
    counts = torch.zeros(100)
    for _ in range(400):
        counts += sampler(labels)[0].float()
    assert counts.sum() == 400 * 10
    assert counts.min() > 15 and counts.max() < 70  # each picked with p = 0.1: ~40 times


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        BalancedPositiveNegativeSampler(0, 0.5)
    with pytest.raises(ValueError):
        BalancedPositiveNegativeSampler(64, 1.5)
