"""Linear SVMs with hard-negative mining, the classifiers of R-CNN (Girshick et al., 2014, sec. 2.3).

One binary SVM per class. Positives: the ground-truth boxes of that class only. Negatives: proposals whose
IoU with every instance of the class is below 0.3 (ground-truth boxes of other classes included). The
negatives of a whole training set do not fit in memory, so the SVM starts on a random subset of them and
then *hard-negative mining* (Felzenszwalb et al., 2010; Sung & Poggio, 1994) repeatedly passes over the
cached features, adds the negatives the current SVM scores above -1 (inside the margin or misclassified),
drops cached negatives scored below -1.2 (the original code's eviction threshold) and retrains.

The SVM is the primal L2-regularised, squared-hinge (L2-loss) linear SVM, liblinear's ``-s 2`` objective,
solved exactly with L-BFGS in float64:

    min_{w, b}  1/2 |w|^2 + 1/2 (b / B)^2 + C * sum_i c_i * max(0, 1 - y_i (w . x_i + b))^2

with ``c_i = pos_weight`` for positives and 1 for negatives (the original code weighted positives by 2),
and the bias regularised like liblinear's bias feature of value ``B`` (the original code: ``-B 10``).
The original R-CNN used liblinear's dual solver of the hinge (L1) loss; the squared hinge is smooth, so a
quasi-Newton method finds its minimum in a few dozen steps, deterministically.

Shape shorthand:
    P: positives; N: negatives; D: feature dimension; K: classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

HARD_THRESH = -1.0  # a negative scored above this is "hard": inside the margin or on the wrong side
EVICT_THRESH = -1.2  # a cached negative scored below this is "easy" and dropped (rcnn_train.m)


def train_linear_svm(
    positives: Tensor,
    negatives: Tensor,
    C: float,
    *,
    pos_weight: float = 2.0,
    bias_mult: float = 10.0,
    max_iter: int = 500,
    tol: float = 1e-8,
) -> tuple[Tensor, float]:
    """Train one SVM on positives (P, D) and negatives (N, D); returns ``w`` (D,) float32 and ``b``.

    Deterministic: the same inputs give the same result (float64 L-BFGS with a strong-Wolfe line search,
    starting from zero).
    """
    if positives.dim() != 2 or negatives.dim() != 2 or positives.shape[1] != negatives.shape[1]:
        raise ValueError(
            f"positives and negatives must be (P, D) and (N, D), got {tuple(positives.shape)} and "
            f"{tuple(negatives.shape)}"
        )
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    x = torch.cat([positives, negatives]).double()  # (P + N, D)
    y = torch.cat([x.new_ones(positives.shape[0]), -x.new_ones(negatives.shape[0])])  # (P + N,)
    cost = C * torch.cat([x.new_full((positives.shape[0],), pos_weight), x.new_ones(negatives.shape[0])])
    x = torch.cat([x, x.new_full((x.shape[0], 1), bias_mult)], dim=1)  # bias feature
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def objective() -> Tensor:
        optimizer.zero_grad()
        margin = (1.0 - y * (x @ w)).clamp(min=0)
        loss = 0.5 * w.dot(w) + (cost * margin.square()).sum()
        loss.backward()
        return loss

    if x.shape[0]:
        optimizer.step(objective)
    w = w.detach()
    return w[:-1].float(), float(w[-1] * bias_mult)


def hard_negatives(scores: Tensor, threshold: float = HARD_THRESH) -> Tensor:
    """Indices (M,) of the negatives whose scores (N,) are above ``threshold`` (the hard ones)."""
    return torch.nonzero(scores > threshold).flatten()


@dataclass
class ClassCache:
    """The examples of one class's SVM held in memory: positives (P, D); negatives (N, D) with their
    global row ids (N,) so that a negative is never added twice."""

    positives: list[Tensor] = field(default_factory=list)
    negatives: Tensor | None = None
    negative_ids: Tensor | None = None

    def add_negatives(self, features: Tensor, ids: Tensor) -> int:
        """Add the rows whose ids are not cached yet; returns how many were added."""
        if self.negative_ids is not None and ids.numel():
            new = ~torch.isin(ids, self.negative_ids)
            features, ids = features[new], ids[new]
        if ids.numel() == 0:
            return 0
        if self.negatives is None:
            self.negatives, self.negative_ids = features.float(), ids
        else:
            self.negatives = torch.cat([self.negatives, features.float()])
            self.negative_ids = torch.cat([self.negative_ids, ids])
        return int(ids.numel())

    def evict(self, scores: Tensor, threshold: float = EVICT_THRESH) -> None:
        """Drop the cached negatives whose scores (N,) are below ``threshold``."""
        if self.negatives is not None:
            keep = scores >= threshold
            self.negatives, self.negative_ids = self.negatives[keep], self.negative_ids[keep]


# A chunk: {"features" (R, D) the SVM features, "is_gt" (R,), "gt_labels" (R,) (class of gt rows),
# "ious" (R, K)}; the chunks come in the same order at every pass, so row ids are running counts.
ChunkStream = Callable[[], Iterable[dict[str, Tensor]]]
Progress = Callable[[Iterable, str], Iterable]


def _no_progress(iterable: Iterable, desc: str) -> Iterable:
    return iterable


class HardNegativeTrainer:
    """K SVMs trained on a stream of feature chunks, step by step (see :func:`train_svms`):
    :meth:`initial_pass`, then :meth:`fit`, then alternately :meth:`mine` and :meth:`fit`.

    ``weights (K, D)`` and ``biases (K,)`` are the current SVMs; ``caches`` the examples in memory.
    """

    def __init__(
        self,
        chunks: ChunkStream,
        num_classes: int,
        *,
        C: float = 0.001,
        pos_weight: float = 2.0,
        neg_iou: float = 0.3,
        init_negatives: int = 5000,
        seed: int = 0,
        progress: Progress = _no_progress,
    ):
        self.chunks = chunks
        self.num_classes = num_classes
        self.C, self.pos_weight, self.neg_iou = C, pos_weight, neg_iou
        self.init_negatives = init_negatives
        self.generator = torch.Generator().manual_seed(seed)
        self.progress = progress
        self.caches = [ClassCache() for _ in range(num_classes)]
        self.weights = torch.zeros(num_classes, 0)
        self.biases = torch.zeros(num_classes)
        self.log: list[dict[str, int]] = []

    def _stream(self, desc: str) -> Iterable[tuple[Tensor, Tensor, dict[str, Tensor]]]:
        """(features (R, D) float32, global row ids (R,), chunk) of one pass."""
        offset = 0
        for chunk in self.progress(self.chunks(), desc):
            feats = chunk["features"].float()
            yield feats, torch.arange(offset, offset + feats.shape[0]), chunk
            offset += feats.shape[0]

    def initial_pass(self) -> None:
        """Collect every positive and a uniformly random subset of ``init_negatives`` negatives per class:
        each negative draws a random key and the smallest keys are kept (reservoir sampling)."""
        keys = [torch.zeros(0) for _ in range(self.num_classes)]
        dim = 0
        for feats, ids, chunk in self._stream("SVM positives, initial negatives"):
            dim = feats.shape[1]
            negs = negative_mask(chunk, self.neg_iou)
            for c, cache in enumerate(self.caches):
                pos = chunk["is_gt"] & (chunk["gt_labels"] == c + 1)
                if pos.any():
                    cache.positives.append(feats[pos])
                rows = torch.nonzero(negs[:, c]).flatten()
                cache.add_negatives(feats[rows], ids[rows])
                keys[c] = torch.cat([keys[c], torch.rand(rows.numel(), generator=self.generator)])
                if keys[c].numel() > self.init_negatives:
                    keep = torch.sort(torch.topk(keys[c], self.init_negatives, largest=False).indices).values
                    keys[c] = keys[c][keep]
                    cache.negatives, cache.negative_ids = cache.negatives[keep], cache.negative_ids[keep]
        if dim == 0:
            raise ValueError("no training features: the feature stream is empty")
        self.weights = torch.zeros(self.num_classes, dim)

    def fit(self, round_: int = 0, added: list[int] | None = None) -> None:
        """Train every class's SVM on its cached examples, then evict the easy negatives."""
        dim = self.weights.shape[1]
        for c, cache in enumerate(self.caches):
            pos = torch.cat(cache.positives) if cache.positives else torch.zeros(0, dim)
            neg = cache.negatives if cache.negatives is not None else torch.zeros(0, dim)
            if pos.shape[0] == 0:
                logger.warning(
                    "class %d has no ground-truth box in the training set: its SVM is empty", c + 1
                )
            self.weights[c], self.biases[c] = train_linear_svm(pos, neg, self.C, pos_weight=self.pos_weight)
            if neg.shape[0]:
                cache.evict(neg @ self.weights[c] + self.biases[c])
            self.log.append(
                {"round": round_, "class": c + 1, "positives": pos.shape[0], "negatives": neg.shape[0],
                 "added": (added or [0] * self.num_classes)[c]}
            )  # fmt: skip

    def mine(self, round_: int = 1) -> list[int]:
        """One pass adding, per class, the negatives scored above -1 that are not cached yet; returns how
        many were added per class."""
        added = [0] * self.num_classes
        for feats, ids, chunk in self._stream(f"hard negatives, round {round_}"):
            negs = negative_mask(chunk, self.neg_iou)
            scores = feats @ self.weights.t() + self.biases  # (R, K)
            for c, cache in enumerate(self.caches):
                rows = torch.nonzero(negs[:, c]).flatten()
                hard = rows[hard_negatives(scores[rows, c])]
                added[c] += cache.add_negatives(feats[hard], ids[hard])
        logger.info("hard-negative round %d: added %s negatives per class", round_, added)
        return added


def train_svms(
    chunks: ChunkStream,
    num_classes: int,
    *,
    C: float = 0.001,
    pos_weight: float = 2.0,
    neg_iou: float = 0.3,
    init_negatives: int = 5000,
    rounds: int = 3,
    seed: int = 0,
    progress: Progress = _no_progress,
) -> tuple[Tensor, Tensor, list[dict[str, int]]]:
    """One SVM per class with hard-negative mining over the chunk stream; see the module docstring.

    ``chunks()`` starts a new pass over the features. Pass 0 collects the positives and a uniformly
    random subset of ``init_negatives`` negatives per class and trains; then up to ``rounds`` times: a pass
    adding the hard negatives (scored > -1), and retraining (which evicts the easy ones); a round that adds
    nothing ends the mining. Returns ``weights (K, D)``, ``biases (K,)`` and a log of
    ``{"round", "class", "positives", "negatives", "added"}`` per class and training.
    """
    trainer = HardNegativeTrainer(
        chunks, num_classes, C=C, pos_weight=pos_weight, neg_iou=neg_iou, init_negatives=init_negatives,
        seed=seed, progress=progress,
    )  # fmt: skip
    trainer.initial_pass()
    trainer.fit(0)
    for round_ in range(1, rounds + 1):
        added = trainer.mine(round_)
        if sum(added) == 0:
            break
        trainer.fit(round_, added)
    return trainer.weights, trainer.biases, trainer.log


def negative_mask(chunk: dict[str, Tensor], neg_iou: float) -> Tensor:
    """(R, K) bool: row r is a negative of class k (IoU < ``neg_iou`` with every instance of k)."""
    return chunk["ious"].float() < neg_iou
