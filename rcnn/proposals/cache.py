"""A folder of precomputed proposals that records how they were made.

Layout (directly usable as ``proposals_file`` by :class:`rcnn.data.coco.CocoDetection`):

    DIR/params.json        the parameters of the proposals (method, mode, seed, min_size, max_boxes, ...)
    DIR/<image_id>.npy     (P, 4) float32 x1, y1, x2, y2 in the pixels of the image file, best ranked first
    DIR/summary.json       written by tools/compute_proposals.py: recall, MABO, boxes per image

Every ``.npy`` is written atomically (:mod:`rcnn.utils.io`: a temporary file, then a rename), so a file
either holds a complete array or does not exist: an interrupted run leaves only whole files behind and the
next run computes what is missing (:meth:`ProposalCache.missing`). Opening a folder whose ``params.json``
differs from the requested parameters is an error naming the differing keys, so proposals made with
different settings are never mixed in one folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rcnn.utils.io import atomic_write_bytes, atomic_write_text

PARAMS_FILE = "params.json"
SUMMARY_FILE = "summary.json"

# Version of the proposal code's output, recorded in params.json. Bump it when a change to
# rcnn/proposals/selective_search.py (or its helpers) changes the boxes it returns, so that caches made by
# the old code are refused instead of silently mixed with new ones.
CODE_VERSION = "selective_search-2"  # 2: the fast preset's k 100, 200, 400 and its fill-only strategy


class ProposalCacheError(ValueError):
    """A cache folder that does not match the requested parameters, or a bad proposals array."""


def _normalise(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as they read back from JSON (tuples -> lists, keys -> str)."""
    return json.loads(json.dumps(dict(params), sort_keys=True))


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON with sorted keys to ``path`` atomically."""
    atomic_write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


def check_proposals(boxes: Any, where: str) -> np.ndarray:
    """``boxes`` as a C-contiguous (P, 4) float32 array of finite values; ``ProposalCacheError`` naming
    ``where`` otherwise. An empty array of any shape becomes (0, 4)."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ProposalCacheError(f"{where}: proposals must have shape (P, 4), got {array.shape}")
    if not np.isfinite(array).all():
        raise ProposalCacheError(f"{where}: proposals contain NaN or infinite values")
    return np.ascontiguousarray(array)


class ProposalCache:
    """``ProposalCache(directory, params)``: one ``<image_id>.npy`` per image plus ``params.json``.

    The folder is created when missing. ``params`` (JSON-serialisable; e.g. ``{"method": "selective_search",
    "mode": "fast", "seed": 0, "min_size": 0, "max_boxes": 2000, "resize_to": 0, "code_version": ...}``)
    is written to ``params.json`` on first use and compared on every later open: a difference raises
    :class:`ProposalCacheError` naming the keys. A folder holding ``.npy`` files but no ``params.json``
    (made by something else) is refused as well: its parameters are unknown.
    """

    def __init__(self, directory: str | os.PathLike, params: Mapping[str, Any]) -> None:
        self.directory = os.fspath(directory)
        self.params = _normalise(params)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ProposalCacheError(f"{self.directory}: exists and is not a folder")
        os.makedirs(self.directory, exist_ok=True)
        params_path = os.path.join(self.directory, PARAMS_FILE)
        if os.path.exists(params_path):
            self._check_params(params_path)
        else:
            stray = [name for name in os.listdir(self.directory) if name.endswith(".npy")]
            if stray:
                raise ProposalCacheError(
                    f"{self.directory}: holds {len(stray)} .npy files (e.g. {sorted(stray)[0]}) but no "
                    f"{PARAMS_FILE}, so the parameters they were made with are unknown; use another folder"
                )
            write_json_atomic(params_path, self.params)

    def _check_params(self, params_path: str) -> None:
        try:
            with open(params_path, encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ProposalCacheError(f"{params_path}: cannot read the cache parameters: {exc}") from None
        if not isinstance(stored, dict):
            raise ProposalCacheError(f"{params_path}: expected a JSON object, got {type(stored).__name__}")
        keys = sorted(set(stored) | set(self.params))
        differing = [k for k in keys if stored.get(k, "<missing>") != self.params.get(k, "<missing>")]
        if differing:
            details = ", ".join(
                f"{k}: cached {stored.get(k, '<missing>')!r} vs requested {self.params.get(k, '<missing>')!r}"
                for k in differing
            )
            raise ProposalCacheError(
                f"{self.directory} holds proposals made with other parameters ({details}); use another "
                f"folder or delete this one (differing keys: {', '.join(differing)})"
            )

    # ------------------------------------------------------------------------------------------- entries
    def path(self, image_id: int) -> str:
        """The ``.npy`` file of ``image_id`` (whether or not it exists)."""
        return os.path.join(self.directory, f"{int(image_id)}.npy")

    def has(self, image_id: int) -> bool:
        return os.path.isfile(self.path(image_id))

    def missing(self, image_ids: Iterable[int]) -> list[int]:
        """The ids of ``image_ids`` without a file, in the given order."""
        present = {name[:-4] for name in os.listdir(self.directory) if name.endswith(".npy")}
        return [int(i) for i in image_ids if str(int(i)) not in present]

    def put(self, image_id: int, boxes: Any) -> str:
        """Store ``boxes`` (P, 4) for ``image_id`` atomically; returns the path."""
        array = check_proposals(boxes, f"image {image_id}")
        # a file object: np.save would append ".npy" to a name
        return atomic_write_bytes(lambda f: np.save(f, array), self.path(image_id))

    def get(self, image_id: int) -> np.ndarray:
        """The (P, 4) float32 proposals of ``image_id``; ``KeyError`` naming the file when absent."""
        path = self.path(image_id)
        if not os.path.isfile(path):
            raise KeyError(f"no proposals for image {image_id}: {path} does not exist")
        return check_proposals(np.load(path), path)

    def write_summary(self, summary: Mapping[str, Any]) -> str:
        """Write ``summary.json`` (atomically) into the folder; returns its path."""
        path = os.path.join(self.directory, SUMMARY_FILE)
        write_json_atomic(path, dict(summary))
        return path


class ProposalsReader:
    """Reads proposals from a folder of ``<image_id>.npy`` or an ``.npz`` (keys ``str(image_id)``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"proposals file not found: {self.path}")
        self._npz = None if os.path.isdir(self.path) else np.load(self.path)

    def get(self, image_id: int) -> np.ndarray:
        if self._npz is None:
            file = os.path.join(self.path, f"{int(image_id)}.npy")
            if not os.path.isfile(file):
                raise KeyError(f"no proposals for image {image_id}: {file} does not exist")
            return check_proposals(np.load(file), file)
        key = str(int(image_id))
        if key not in self._npz.files:
            raise KeyError(f"no proposals for image {image_id} in {self.path}")
        return check_proposals(self._npz[key], f"{self.path}[{key}]")

    def close(self) -> None:
        if self._npz is not None:
            self._npz.close()

    def __enter__(self) -> ProposalsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
