"""Training / inference samplers, aspect-ratio grouping and exact resumption of the data stream."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import Dataset

from rcnn.data.samplers import (
    GroupedBatchSampler,
    InferenceSampler,
    TrainingSampler,
    aspect_ratio_group_ids,
    build_batch_data_loader,
)


def take(iterable, n):
    return list(itertools.islice(iterable, n))


def test_training_sampler_epochs_are_seeded_permutations():
    s = TrainingSampler(7, seed=3, rank=0, world_size=1)
    stream = take(iter(s), 21)
    for e in range(3):
        epoch = stream[7 * e : 7 * (e + 1)]
        assert sorted(epoch) == list(range(7))
        expected = torch.randperm(7, generator=torch.Generator().manual_seed(3 + e)).tolist()
        assert epoch == expected
    assert stream[:7] != stream[7:14]  # a fresh shuffle each epoch
    assert take(iter(TrainingSampler(7, seed=3, rank=0, world_size=1)), 21) == stream
    assert take(iter(TrainingSampler(4, shuffle=False, rank=0, world_size=1)), 6) == [0, 1, 2, 3, 0, 1]


def test_training_sampler_shards_the_global_stream():
    full = take(iter(TrainingSampler(5, seed=1, rank=0, world_size=1)), 30)
    shards = [take(iter(TrainingSampler(5, seed=1, rank=r, world_size=3)), 10) for r in range(3)]
    assert [shards[i % 3][i // 3] for i in range(30)] == full
    with pytest.raises(ValueError, match="rank 3"):
        TrainingSampler(5, rank=3, world_size=3)


def test_training_sampler_resumes_exactly():
    s = TrainingSampler(6, seed=0, rank=1, world_size=2)
    it = iter(s)
    head = take(it, 8)
    state = s.state_dict()
    assert state["position"] == 8
    tail = take(it, 9)
    resumed = TrainingSampler(6, seed=0, rank=1, world_size=2)
    resumed.load_state_dict(state)
    assert take(iter(resumed), 9) == tail
    assert head != tail[:8]


def test_inference_sampler_covers_each_index_once():
    for size, ws in [(10, 3), (2, 4), (0, 2), (9, 1)]:
        shards = [list(InferenceSampler(size, rank=r, world_size=ws)) for r in range(ws)]
        assert sum(shards, []) == list(range(size))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        assert [len(InferenceSampler(size, r, ws)) for r in range(ws)] == list(map(len, shards))


def test_grouped_batches_are_homogeneous_and_use_every_index():
    group_ids = [0, 1, 0, 0, 1, 1, 0, 1, 0]
    bs = GroupedBatchSampler(TrainingSampler(9, seed=2, rank=0, world_size=1), group_ids, 2)
    batches = take(iter(bs), 40)
    assert all(len(b) == 2 and group_ids[b[0]] == group_ids[b[1]] for b in batches)
    counts = torch.bincount(torch.tensor(sum(batches, [])), minlength=9)
    assert counts.min() >= 7  # 80 draws from 9 images, each seen about 9 times (buffers hold the rest)


@pytest.mark.parametrize("group_ids", [None, [0, 1, 1, 0, 1, 0, 0]])
def test_batch_sampler_resume_replays_to_the_same_batches(group_ids):
    def make():
        return GroupedBatchSampler(TrainingSampler(7, seed=5, rank=0, world_size=1), group_ids, 3)

    reference = take(iter(make()), 12)
    first = make()
    it = iter(first)
    assert take(it, 5) == reference[:5]
    state = first.state_after(5)
    assert state == first.state_dict() == {"batches": 5, "batch_size": 3}
    resumed = make()
    resumed.load_state_dict(state)
    assert take(iter(resumed), 7) == reference[5:]
    assert resumed.state_after(2) == {"batches": 7, "batch_size": 3}
    with pytest.raises(ValueError, match="batched by 3, now by 2"):
        GroupedBatchSampler(TrainingSampler(7), group_ids, 2).load_state_dict(state)


class IndexDataset(Dataset):
    def __init__(self, sizes):
        self.sizes = sizes  # (h, w) per image

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        h, w = self.sizes[i]
        return torch.zeros(3, h, w), {"index": i}


def collate(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


def test_aspect_ratio_group_ids_from_images_or_image_info():
    ds = IndexDataset([(4, 8), (8, 4), (5, 5)])
    assert aspect_ratio_group_ids(ds) == [0, 1, 0]
    ds.image_info = lambda i: {"height": [1, 2, 3][i], "width": 2}
    assert aspect_ratio_group_ids(ds) == [0, 0, 1]


def test_loader_with_workers_resumes_from_what_was_consumed():
    sizes = [(4, 8) if i % 3 else (8, 4) for i in range(11)]
    ds = IndexDataset(sizes)

    def loader():
        sampler = TrainingSampler(len(ds), seed=4, rank=0, world_size=1)
        return build_batch_data_loader(ds, sampler, 2, collate, num_workers=2, aspect_ratio_grouping=True)

    def ids(batch):
        return [t["index"] for t in batch[1]]

    reference = [ids(b) for b in take(iter(loader()), 10)]
    assert all(len({sizes[i][0] > sizes[i][1] for i in b}) == 1 for b in reference)
    first = loader()
    it = iter(first)
    assert [ids(b) for b in take(it, 4)] == reference[:4]
    assert first.batch_sampler.state_dict()["batches"] > 4  # the workers prefetched ahead
    state = first.batch_sampler.state_after(4)
    del it
    second = loader()
    second.batch_sampler.load_state_dict(state)
    assert [ids(b) for b in take(iter(second), 6)] == reference[4:]


_HOLDS_ITERATOR_AT_EXIT = """
import torch
from rcnn.data.samplers import TrainingSampler, build_batch_data_loader

loader = build_batch_data_loader(
    list(range(64)), TrainingSampler(64, seed=0), 4, torch.utils.data.default_collate, num_workers=1
)
batches = iter(loader)  # still referenced when the interpreter exits, its worker still running
print(next(batches).tolist())
"""


def test_process_exits_while_a_loader_iterator_with_workers_is_alive():
    # The workers ignore SIGTERM (the trainer stops them); multiprocessing's exit handler used to send
    # them SIGTERM and then wait for them forever.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _HOLDS_ITERATOR_AT_EXIT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(eval(result.stdout.strip())) == 4
