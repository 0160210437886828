"""The Region Proposal Network over a feature pyramid (Lin et al., 2017, Sec. 4.1).

Shape shorthand:
    N: images; L: pyramid levels; A: anchors per position; T_l: anchors of level l of one image
    (``H_l * W_l * A``); T: ``sum(T_l)``; M: candidates kept before NMS (``sum(min(pre_nms_top_n, T_l))``).

One :class:`~rcnn.modeling.rpn.RPNHead` is shared by every level, and each level has anchors of one size
(:class:`~rcnn.modeling.anchors.PyramidAnchorGenerator`). Training labels and losses are those of
:class:`~rcnn.modeling.rpn.RegionProposalNetwork` over the anchors of all levels together. Proposal
selection, per image, is torchvision's and detectron2's: the ``pre_nms_top_n`` best by objectness **per
level**; decode; clip to the image; drop boxes narrower or shorter than ``min_size``; NMS at ``nms_thresh``
within each level (levels never suppress each other); the ``post_nms_top_n`` best of all levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rcnn.ops.boxes import clip_boxes_to_image, remove_small_boxes
from rcnn.structures import Target

from .anchors import PyramidAnchorGenerator
from .box_coder import BoxCoder
from .losses import rpn_losses
from .matcher import Matcher
from .rpn import RegionProposalNetwork, RPNHead, nms_first_k
from .sampler import BalancedPositiveNegativeSampler


class MultiLevelRPN(RegionProposalNetwork):
    """``forward(features {name: (N, C, H_l, W_l)}, image_sizes, targets=None) -> (proposals, losses)``,
    reading the levels ``in_features`` (finest first, the order of ``anchor_generator.levels``).

    proposals: N tensors (P_i, 4), detached, clipped; losses as :class:`RegionProposalNetwork`'s.
    ``pre_nms_top_n_*`` count per level, ``post_nms_top_n_*`` per image. The other arguments are those of
    :class:`RegionProposalNetwork`.
    """

    def __init__(
        self,
        in_features: Sequence[str],
        anchor_generator: PyramidAnchorGenerator,
        head: RPNHead,
        box_coder: BoxCoder,
        matcher: Matcher,
        sampler: BalancedPositiveNegativeSampler,
        **options,
    ):
        if len(in_features) != len(anchor_generator.levels):
            raise ValueError(f"levels {list(in_features)} but {len(anchor_generator.levels)} anchor levels")
        super().__init__(anchor_generator, head, box_coder, matcher, sampler, **options)
        self.in_features = list(in_features)

    def forward(
        self,
        features: dict[str, Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[Target] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        maps = [features[name] for name in self.in_features]
        objectness, deltas = [], []
        for feature in maps:
            logits, box_deltas = self.head(feature)  # (N, A, H_l, W_l), (N, 4A, H_l, W_l)
            n, a, h, w = logits.shape
            objectness.append(logits.permute(0, 2, 3, 1).reshape(n, -1))  # (N, T_l)
            deltas.append(box_deltas.reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        anchors = self.anchor_generator(maps)  # L x (T_l, 4)
        counts = [len(level) for level in anchors]
        objectness_t, deltas_t = torch.cat(objectness, 1), torch.cat(deltas, 1)  # (N, T), (N, T, 4)
        all_anchors = torch.cat(anchors)  # (T, 4)

        proposals = self.select_level_proposals(
            all_anchors, counts, objectness_t.detach().float(), deltas_t.detach(), image_sizes
        )
        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise ValueError("the RPN needs targets in training mode")
            labels, target_deltas = self.label_anchors(all_anchors, targets, image_sizes)
            losses = rpn_losses(objectness_t, deltas_t, labels, target_deltas, self.smooth_l1_beta)
        return proposals, losses

    @torch.no_grad()
    def select_level_proposals(
        self,
        anchors: Tensor,
        counts: list[int],
        objectness: Tensor,
        deltas: Tensor,
        image_sizes: list[tuple[int, int]],
    ) -> list[Tensor]:
        """anchors: (T, 4); counts: T_l per level; objectness: (N, T); deltas: (N, T, 4).
        Returns N proposals (P_i, 4)."""
        mode = "train" if self.training else "test"
        n = objectness.shape[0]
        top_idx, levels, start = [], [], 0
        for level, count in enumerate(counts):
            k = min(self.pre_nms_top_n[mode], count)
            top_idx.append(objectness[:, start : start + count].topk(k, dim=1).indices + start)  # (N, k)
            levels.append(torch.full((k,), level, dtype=torch.int64, device=objectness.device))
            start += count
        idx = torch.cat(top_idx, dim=1)  # (N, M)
        level_of = torch.cat(levels)  # (M,)
        scores = objectness.gather(1, idx)  # (N, M)
        chosen_deltas = deltas.gather(1, idx[..., None].expand(-1, -1, 4))  # (N, M, 4)
        boxes = self.box_coder.decode(chosen_deltas.reshape(-1, 4), anchors[idx.reshape(-1)])
        boxes = boxes.reshape(n, -1, 4)  # (N, M, 4)
        post_n = self.post_nms_top_n[mode]
        proposals = []
        for boxes_i, scores_i, size in zip(boxes, scores, image_sizes):
            boxes_i = clip_boxes_to_image(boxes_i, size)
            keep = remove_small_boxes(boxes_i, self.min_size)
            boxes_i, scores_i, level_i = boxes_i[keep], scores_i[keep], level_of[keep]
            # NMS within each level on the level's best-first prefix (levels never suppress each other):
            # the first post_n kept of every level hold the post_n best kept of all levels
            kept_boxes, kept_scores = [], []
            for level in range(len(counts)):
                members = (level_i == level).nonzero().squeeze(1)  # best first, as topk returned them
                keep = nms_first_k(boxes_i[members], scores_i[members], self.nms_thresh, post_n)
                kept_boxes.append(boxes_i[members[keep]])
                kept_scores.append(scores_i[members[keep]])
            scores_cat = torch.cat(kept_scores)
            order = scores_cat.argsort(descending=True, stable=True)[:post_n]
            proposals.append(torch.cat(kept_boxes)[order])
        return proposals
