"""An on-disk cache of per-proposal CNN features, written and read in chunks.

R-CNN trains its SVMs and box regressors on the features of every proposal of every training image: for
PASCAL VOC 2007 and AlexNet's pool5 that was about 200 GB, so the features are streamed to disk while they
are extracted and streamed back chunk by chunk while the SVMs are trained (never all in memory).

Layout of ``directory``::

    index.json        {"version", "params", "chunks": [{"file", "rows", "bytes", "image_ids"}], "complete"}
    chunk_000000.pt   torch.save of {field: tensor}, rows of whole images
    chunk_000001.pt   ...

Each chunk holds the rows (proposals) of whole images, flushed once at least ``chunk_size`` rows are
buffered (a chunk may exceed ``chunk_size`` by less than one image's rows). A chunk file is written to a
temporary file and renamed; the index is rewritten the same way after it, so an interrupted extraction
leaves complete chunks and an index naming only complete chunks. Reopening the cache with the same
``params`` continues: :attr:`FeatureCache.done_images` are the images of the indexed chunks, the rest is
extracted again. An indexed chunk whose file is missing or has the wrong size is dropped (its images are
extracted again). Opening with different ``params`` is an error naming the differing keys: delete the
directory or choose another one.

Fields written by :func:`rcnn.detectors.rcnn2014.train.extract_features` (R rows):
``features (R, Dp)`` (float16 or float32), ``boxes (R, 4)``, ``image_ids (R,)``, ``is_gt (R,)``,
``ious (R, K)`` (IoU with the closest instance of each class), ``gt_boxes (R, 4)`` / ``gt_labels (R,)`` /
``max_iou (R,)`` (the best-overlapping ground-truth box of any class, label 0 when the image has none).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from rcnn.utils.io import atomic_save, atomic_write_text

logger = logging.getLogger(__name__)

INDEX = "index.json"
VERSION = 1


class FeatureCacheError(ValueError):
    """A cache directory that cannot be used: unreadable, another version, or made with other parameters
    (a user error: the message names the index file and what to do)."""


class FeatureCache:
    """Chunked feature store in ``directory`` for features computed with ``params`` (a JSON-able dict that
    identifies them: network, weights fingerprint, input size, dataset, ...)."""

    def __init__(self, directory: str | os.PathLike, params: dict[str, Any], *, chunk_size: int = 4096):
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.directory = os.fspath(directory)
        self.params = json.loads(json.dumps(params))  # normalised: tuples -> lists, keys -> str
        self.chunk_size = int(chunk_size)
        self.chunks: list[dict[str, Any]] = []
        self.complete = False
        self._buffer: list[dict[str, Tensor]] = []
        self._buffer_ids: list[int] = []
        self._buffer_rows = 0
        os.makedirs(self.directory, exist_ok=True)
        index = os.path.join(self.directory, INDEX)
        if os.path.isfile(index):
            self._load_index(index)

    # ------------------------------------------------------------------------------------------- index
    @property
    def index_path(self) -> str:
        return os.path.join(self.directory, INDEX)

    def _load_index(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise FeatureCacheError(
                f"{path}: unreadable feature-cache index ({e}); delete the directory"
            ) from None
        if index.get("version") != VERSION:
            raise FeatureCacheError(
                f"{path}: feature-cache version {index.get('version')}, expected {VERSION}"
            )
        cached = index.get("params", {})
        if cached != self.params:
            keys = sorted(k for k in set(cached) | set(self.params) if cached.get(k) != self.params.get(k))
            diffs = "; ".join(f"{k}: cached {cached.get(k)!r}, now {self.params.get(k)!r}" for k in keys)
            raise FeatureCacheError(
                f"{path}: the cached features were computed with other parameters ({diffs}); "
                "delete the directory or use another cache directory"
            )
        kept = []
        for chunk in index.get("chunks", []):
            file = os.path.join(self.directory, chunk["file"])
            if not os.path.isfile(file) or os.path.getsize(file) != chunk["bytes"]:
                logger.warning(
                    "feature cache: chunk %s is missing or incomplete; its images are redone", file
                )
                continue
            kept.append(chunk)
        self.chunks = kept
        self.complete = bool(index.get("complete")) and len(kept) == len(index.get("chunks", []))
        if len(kept) != len(index.get("chunks", [])):
            self._write_index()

    def _write_index(self) -> None:
        index = {"version": VERSION, "params": self.params, "chunks": self.chunks, "complete": self.complete}
        atomic_write_text(json.dumps(index, indent=1), self.index_path)

    # ------------------------------------------------------------------------------------------- write
    @property
    def done_images(self) -> set[int]:
        """Ids of the images whose rows are in a complete chunk on disk."""
        return {int(i) for chunk in self.chunks for i in chunk["image_ids"]}

    @property
    def num_rows(self) -> int:
        """Rows in the chunks on disk."""
        return sum(int(chunk["rows"]) for chunk in self.chunks)

    def add(self, image_id: int, rows: dict[str, Tensor]) -> None:
        """Buffer the rows of one image (every field has the same first dimension, possibly 0); a chunk
        is written once ``chunk_size`` rows are buffered."""
        if self.complete:
            raise RuntimeError(f"{self.index_path}: the cache is complete; nothing more can be added")
        sizes = {name: int(t.shape[0]) for name, t in rows.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"image_id {image_id}: fields have different numbers of rows: {sizes}")
        if self._buffer and set(rows) != set(self._buffer[0]):
            raise ValueError(
                f"image_id {image_id}: fields {sorted(rows)}, expected {sorted(self._buffer[0])}"
            )
        self._buffer.append({name: t.detach().cpu() for name, t in rows.items()})
        self._buffer_ids.append(int(image_id))
        self._buffer_rows += next(iter(sizes.values()), 0)
        if self._buffer_rows >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered images as one chunk (nothing when the buffer is empty)."""
        if not self._buffer:
            return
        fields = {name: torch.cat([b[name] for b in self._buffer]) for name in self._buffer[0]}
        name = f"chunk_{self._next_chunk_number():06d}.pt"
        path = atomic_save(fields, os.path.join(self.directory, name))
        self.chunks.append(
            {
                "file": name,
                "rows": self._buffer_rows,
                "bytes": os.path.getsize(path),
                "image_ids": self._buffer_ids,
            }
        )
        self._write_index()
        self._buffer, self._buffer_ids, self._buffer_rows = [], [], 0

    def _next_chunk_number(self) -> int:
        numbers = [int(c["file"][len("chunk_") : -len(".pt")]) for c in self.chunks]
        return max(numbers, default=-1) + 1

    def finish(self) -> None:
        """Flush and mark the cache complete."""
        self.flush()
        self.complete = True
        self._write_index()

    # -------------------------------------------------------------------------------------------- read
    def __len__(self) -> int:
        return len(self.chunks)

    def read_chunk(self, i: int, fields: Sequence[str] | None = None) -> dict[str, Tensor]:
        """The tensors of chunk ``i`` (all fields, or ``fields``)."""
        path = os.path.join(self.directory, self.chunks[i]["file"])
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if fields is not None:
            missing = [f for f in fields if f not in data]
            if missing:
                raise KeyError(f"{path}: no field(s) {missing}; fields: {sorted(data)}")
            data = {f: data[f] for f in fields}
        return {name: t.clone() for name, t in data.items()}

    def iter_chunks(self, fields: Sequence[str] | None = None) -> Iterator[dict[str, Tensor]]:
        """Chunk after chunk, in the order they were written (one chunk in memory at a time)."""
        for i in range(len(self.chunks)):
            yield self.read_chunk(i, fields)
