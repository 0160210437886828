"""Samplers for iteration-based training and distributed inference.

    sampler = TrainingSampler(len(dataset), seed=cfg.solver.seed)        # infinite, sharded by rank
    loader = build_batch_data_loader(dataset, sampler, batch_size=2, collate_fn=collate_detection,
                                     aspect_ratio_grouping=True)
    loader.batch_sampler.state_dict()   # the position; load_state_dict() before iterating resumes there

The training stream is a deterministic function of ``seed``: epoch ``e`` is ``randperm(size)`` drawn from
a generator seeded with ``seed + e``, epochs are concatenated, and rank ``r`` of ``w`` takes every
``w``-th index starting at ``r``. Batches (with or without aspect-ratio grouping) are a deterministic
function of that stream, so a position is just a count, and a resumed run sees exactly the batches the
uninterrupted run would have seen.

Augmentation: with ``keyed=True`` the sampler yields :class:`~rcnn.data.sample_keys.SampleKey`s,
``(index, draw_seed(seed, g))`` with ``g`` the position in the global stream, and the datasets seed the
sample's random transforms from the key: the augmentation of every sample is a function of the seed and
its stream position, whatever the number of workers, and a resumed run repeats it exactly. Epoch-based
samplers (``DistributedSampler``) get the same from :class:`KeyedSampler`.

A DataLoader with workers runs ahead of the training loop, so the count the batch sampler has *yielded*
is ahead of what training *consumed*: the trainer therefore saves ``batch_sampler.state_after(n)``, the
state after the ``n`` batches it actually used.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util  # noqa: F401  (registers its exit handler on import: ours must come after it)
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from rcnn.data.sample_keys import SampleKey, draw_seed
from rcnn.utils.comm import get_rank, get_world_size

logger = logging.getLogger(__name__)


class TrainingSampler(Sampler[int]):
    """Infinite stream of dataset indices: seeded epoch-wise permutations, sharded by rank.

    ``keyed=True``: yield ``SampleKey(index, draw_seed(seed, g))`` instead, ``g`` the index's position in
    the global (unsharded) stream, so the augmentation seeds do not depend on the number of processes.
    ``state_dict()`` is the number of indices this rank's iterator has yielded (plus what it was started
    from); ``load_state_dict()`` makes the next ``iter()`` start there.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        *,
        keyed: bool = False,
    ) -> None:
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size={size}")
        self.size = int(size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.keyed = bool(keyed)
        self.world_size = get_world_size() if world_size is None else int(world_size)
        self.rank = get_rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self._position = 0

    def epoch_order(self, epoch: int) -> list[int]:
        """The global (unsharded) order of the indices in ``epoch``."""
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self) -> Iterator[int | SampleKey]:
        g = self._position * self.world_size + self.rank  # position in the global stream
        cached_epoch, order = -1, []
        while True:
            epoch, offset = divmod(g, self.size)
            if epoch != cached_epoch:
                cached_epoch, order = epoch, self.epoch_order(epoch)
            self._position += 1
            yield SampleKey(order[offset], draw_seed(self.seed, g)) if self.keyed else order[offset]
            g += self.world_size

    def set_position(self, position: int) -> None:
        """Start the next ``iter()`` after ``position`` indices of this rank's shard."""
        self._position = int(position)

    def state_dict(self) -> dict[str, Any]:
        return {
            "position": self._position,
            "world_size": self.world_size,
            "size": self.size,
            "seed": self.seed,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("size", self.size) != self.size or state.get("seed", self.seed) != self.seed:
            logger.warning(
                "resuming the data stream of a different dataset size / seed (%s, %s -> %s, %s): "
                "the data order will not match the interrupted run",
                state.get("size"),
                state.get("seed"),
                self.size,
                self.seed,
            )
        position = int(state["position"])
        old_ws = int(state.get("world_size", self.world_size))
        if old_ws != self.world_size:
            position = position * old_ws // self.world_size
            logger.warning("world size changed %d -> %d: data order approximated", old_ws, self.world_size)
        self._position = position


class KeyedSampler(Sampler[SampleKey]):
    """An epoch-based sampler's indices as :class:`SampleKey`s: the ``i``-th index of epoch ``e`` on
    rank ``r`` gets the augmentation seed ``draw_seed(seed, e, r, i)``.

    ``set_epoch(e)`` sets the epoch and passes it on to the wrapped sampler (``DistributedSampler``
    reshuffles with it), so re-running an epoch (after a resume) repeats its order and its augmentations.
    """

    def __init__(self, sampler: Sampler[int], seed: int = 0, rank: int | None = None) -> None:
        self.sampler = sampler
        self.seed = int(seed)
        self.rank = get_rank() if rank is None else int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[SampleKey]:
        for i, index in enumerate(self.sampler):
            yield SampleKey(int(index), draw_seed(self.seed, self.epoch, self.rank, i))

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]


class InferenceSampler(Sampler[int]):
    """This rank's contiguous share of ``range(size)``; shares differ in length by at most one and,
    concatenated in rank order, give every index exactly once."""

    def __init__(self, size: int, rank: int | None = None, world_size: int | None = None) -> None:
        world_size = get_world_size() if world_size is None else int(world_size)
        rank = get_rank() if rank is None else int(rank)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        base, extra = divmod(int(size), world_size)
        begin = rank * base + min(rank, extra)
        self.indices = range(begin, begin + base + (1 if rank < extra else 0))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class GroupedBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices (or :class:`SampleKey`s) from ``sampler``, each batch from a single
    group.

    ``group_ids[i]`` is the group of dataset index ``i`` (e.g. :func:`aspect_ratio_group_ids`); None puts
    everything in one group (plain batching). Like detectron2's aspect-ratio grouping, an index waits in
    its group's buffer until the buffer holds ``batch_size`` indices. Incomplete buffers are dropped
    when a finite sampler ends.

    The position is the number of batches since the start of the stream. With a
    :class:`TrainingSampler` the batch sampler owns its position: resuming replays the (cheap) index
    stream from the start, regrouping, and skips the batches already used.
    """

    def __init__(self, sampler: Sampler[int], group_ids: Sequence[int] | None, batch_size: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.sampler = sampler
        self.group_ids = None if group_ids is None else [int(g) for g in group_ids]
        self.batch_size = int(batch_size)
        self._start = 0  # batches to skip at the start of the next iteration
        self._batches = 0  # batches yielded so far (including the skipped ones)

    def __iter__(self) -> Iterator[list[int]]:
        skip = self._start
        self._batches = skip
        count = 0
        if isinstance(self.sampler, TrainingSampler):
            if self.group_ids is None:  # plain batches: jump straight to the position
                self.sampler.set_position(skip * self.batch_size)
                count = skip
            else:
                self.sampler.set_position(0)
        buffers: dict[int, list[int]] = {}
        for item in self.sampler:  # an index or a SampleKey
            group = 0 if self.group_ids is None else self.group_ids[_index(item)]
            buffer = buffers.setdefault(group, [])
            buffer.append(item)
            if len(buffer) < self.batch_size:
                continue
            batch = buffer[:]
            buffer.clear()
            count += 1
            if count <= skip:
                continue
            self._batches = count
            yield batch

    def state_after(self, consumed: int) -> dict[str, Any]:
        """The state once ``consumed`` batches of the current iteration have been used."""
        return {"batches": self._start + int(consumed), "batch_size": self.batch_size}

    def state_dict(self) -> dict[str, Any]:
        """The state after the batches the iterator has yielded (ahead of training with workers)."""
        return {"batches": self._batches, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("batch_size", self.batch_size)) != self.batch_size:
            raise ValueError(
                f"cannot resume the data stream: it was batched by {state['batch_size']}, "
                f"now by {self.batch_size}"
            )
        self._start = self._batches = int(state["batches"])


def _index(item: int | SampleKey) -> int:
    return item.index if isinstance(item, SampleKey) else item


def aspect_ratio_group_ids(dataset: Dataset) -> list[int]:
    """Group 0 for images with ``width >= height``, 1 for the others.

    Uses ``dataset.image_info(i)`` (``"width"``, ``"height"``) when the dataset has it, otherwise loads
    every item and reads the image tensor's shape (slow).
    """
    ids = []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        if hasattr(dataset, "image_info"):
            info = dataset.image_info(i)
            width, height = info["width"], info["height"]
        else:
            image = dataset[i][0]
            height, width = image.shape[-2:]
        ids.append(0 if width >= height else 1)
    return ids


def _worker_init(worker_id: int) -> None:
    """Workers ignore SIGINT / SIGTERM: the main process decides when to stop (and checkpoints first);
    workers exit when it does (see :func:`_stop_workers_at_exit`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_workers_at_exit() -> None:
    """Kill the daemonic child processes (data workers) still alive when the main process exits.

    A loader iterator still referenced at exit (a global, or a frame of an uncaught exception's
    traceback) leaves its workers running. multiprocessing's own exit handler stops daemonic children with
    SIGTERM, which data workers ignore (:func:`_worker_init`), and then waits for them forever; this
    handler runs before it (registered later) and sends SIGKILL instead. Daemonic children are ended at
    exit either way; only the signal differs.
    """
    for process in multiprocessing.active_children():
        if process.daemon:
            process.kill()
            process.join(timeout=5)


_exit_handler_registered = False


def worker_init_fn(num_workers: int) -> Callable[[int], None] | None:
    """The ``worker_init_fn`` of every loader of the project (None without workers); registers
    :func:`_stop_workers_at_exit` once."""
    global _exit_handler_registered
    if num_workers <= 0:
        return None
    if not _exit_handler_registered:
        atexit.register(_stop_workers_at_exit)
        _exit_handler_registered = True
    return _worker_init


def build_batch_data_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    collate_fn: Callable[[list[Any]], Any],
    num_workers: int = 0,
    aspect_ratio_grouping: bool = False,
    group_ids: Sequence[int] | None = None,
    *,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader yielding batches of ``batch_size`` (per process) from ``sampler``.

    With ``aspect_ratio_grouping`` every batch holds only landscape or only portrait images
    (``group_ids`` defaults to :func:`aspect_ratio_group_ids`). The resumable batch sampler is
    ``loader.batch_sampler`` (a :class:`GroupedBatchSampler`).
    """
    if aspect_ratio_grouping and group_ids is None:
        group_ids = aspect_ratio_group_ids(dataset)
    batch_sampler = GroupedBatchSampler(sampler, group_ids if aspect_ratio_grouping else None, batch_size)
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn(num_workers),
    )
