"""Sample keys: augmentation seeded by (seed, stream position, sample), whatever process loads the sample."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from helpers.data_fixtures import make_coco
from torch.utils.data import DataLoader, DistributedSampler

from rcnn.data.coco import CocoDetection
from rcnn.data.collate import collate_detection
from rcnn.data.imagefolder import ImageFolderDataset, build_classification_transforms
from rcnn.data.sample_keys import SampleKey, draw_seed, split_key, torch_seeded
from rcnn.data.samplers import GroupedBatchSampler, KeyedSampler, TrainingSampler, build_batch_data_loader
from rcnn.data.synthetic import make_classification_dataset
from rcnn.data.transforms import build_detection_transforms


def take(iterable, n):
    return list(itertools.islice(iterable, n))


def test_draw_seed_is_a_pure_function_of_seed_and_position():
    assert draw_seed(3, 5) == draw_seed(3, 5)
    seeds = {draw_seed(s, p) for s in range(4) for p in range(50)} | {
        draw_seed(0, 1, 0, p) for p in range(50)
    }
    assert len(seeds) == 250  # distinct for every (seed, position)
    assert all(0 <= s < 2**64 for s in seeds)
    assert split_key(SampleKey(4, 9)) == (4, 9) and split_key(np.int64(4)) == (4, None)


def test_torch_seeded_draws_from_the_seed_and_leaves_the_caller_stream_alone():
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    with torch_seeded(7):
        a = torch.rand(3)
    with torch_seeded(7):
        b = torch.rand(3)
    with torch_seeded(8):
        c = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.rand(3), expected_next)  # as if the blocks had not run


def test_keyed_training_sampler_seeds_by_global_stream_position():
    plain = take(iter(TrainingSampler(5, seed=2, rank=0, world_size=1)), 15)
    keyed = take(iter(TrainingSampler(5, seed=2, rank=0, world_size=1, keyed=True)), 15)
    assert [k.index for k in keyed] == plain  # the same order
    assert [k.seed for k in keyed] == [draw_seed(2, g) for g in range(15)]
    # sharded: every global position keeps its key, so the augmentation ignores the number of processes
    shards = [take(iter(TrainingSampler(5, seed=2, rank=r, world_size=3, keyed=True)), 5) for r in range(3)]
    assert [shards[g % 3][g // 3] for g in range(15)] == keyed
    # resumed from a position: the same keys
    s = TrainingSampler(5, seed=2, rank=0, world_size=1, keyed=True)
    s.load_state_dict({"position": 6, "world_size": 1, "size": 5, "seed": 2})
    assert take(iter(s), 9) == keyed[6:]


def test_grouped_batches_of_keys_resume_to_the_same_keys():
    group_ids = [0, 1, 0, 0, 1, 1, 0]

    def batches(start=None, n=8):
        sampler = GroupedBatchSampler(
            TrainingSampler(7, seed=1, rank=0, world_size=1, keyed=True), group_ids, 2
        )
        if start is not None:
            sampler.load_state_dict(start)
        return sampler, take(iter(sampler), n)

    sampler, reference = batches()
    assert all(isinstance(k, SampleKey) for b in reference for k in b)
    assert all(len({group_ids[k.index] for k in b}) == 1 for b in reference)
    _, resumed = batches(sampler.state_after(3), 5)
    assert resumed == reference[3:]


def test_keyed_sampler_wraps_an_epoch_sampler():
    inner = DistributedSampler(list(range(6)), num_replicas=2, rank=1, shuffle=True, seed=3)
    sampler = KeyedSampler(inner, seed=3, rank=1)
    assert len(sampler) == 3
    sampler.set_epoch(2)
    epoch2 = list(sampler)
    assert [k.index for k in epoch2] == list(inner)  # the wrapped order, epoch passed on
    assert [k.seed for k in epoch2] == [draw_seed(3, 2, 1, i) for i in range(3)]
    sampler.set_epoch(1)
    assert list(sampler) != epoch2
    sampler.set_epoch(2)
    assert list(sampler) == epoch2  # a re-run epoch repeats order and augmentation


def test_detection_augmentation_follows_the_key_not_the_process(tmp_path):
    images_dir, ann = make_coco(tmp_path)
    transforms = build_detection_transforms(True, [20, 30, 40], 100, hflip_prob=0.5, color_jitter=0.4)
    ds = CocoDetection(images_dir, ann, transforms)
    key = SampleKey(0, draw_seed(0, 3))
    first = ds[key]
    for other in range(4):  # whatever was drawn in between
        ds[SampleKey(other % len(ds), draw_seed(1, other))]
        ds[other % len(ds)]
    again = ds[key]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["boxes"], again[1]["boxes"])
    outputs = {tuple(ds[SampleKey(0, draw_seed(0, p))][1]["boxes"][0].tolist()) for p in range(12)}
    assert len(outputs) > 2  # sizes and flips vary with the key
    assert ds[1][1]["image_id"] == 2  # plain indices still work

    def stream(num_workers):
        sampler = TrainingSampler(len(ds), seed=5, rank=0, world_size=1, keyed=True)
        loader = build_batch_data_loader(ds, sampler, 2, collate_detection, num_workers=num_workers)
        return take(iter(loader), 4)

    main, workers = stream(0), stream(2)
    for a, b in zip(main, workers):
        assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))
        assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(a[1], b[1]))


def test_classification_augmentation_follows_the_key_not_the_process(tmp_path):
    root = make_classification_dataset(
        tmp_path, num_train_per_class=1, num_val_per_class=1, image_size=24, workers=1
    )
    transform = build_classification_transforms(True, 24, 16, pca_lighting=0.1, color_jitter=0.4)
    ds = ImageFolderDataset(root["train"], transform)
    a = ds[SampleKey(0, 11)][0]
    torch.rand(5)  # the caller's stream moves on; the key's draws do not
    assert torch.equal(ds[SampleKey(0, 11)][0], a)
    assert not torch.equal(ds[SampleKey(0, 12)][0], a)

    def epoch(num_workers, e):
        sampler = KeyedSampler(DistributedSampler(ds, num_replicas=1, rank=0, seed=4), seed=4, rank=0)
        sampler.set_epoch(e)
        return list(DataLoader(ds, batch_size=4, sampler=sampler, num_workers=num_workers))

    main, workers = epoch(0, 1), epoch(2, 1)
    assert len(main) == len(workers) > 1
    for (xa, ya), (xb, yb) in zip(main, workers):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
