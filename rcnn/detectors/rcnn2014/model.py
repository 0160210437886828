"""R-CNN (Girshick, Donahue, Darrell, Malik, "Rich feature hierarchies for accurate object detection and
semantic segmentation", CVPR 2014): the detector at test time.

Each region proposal is warped with context to a fixed-size crop (:mod:`rcnn.detectors.rcnn2014.warp`) and
run through the CNN on its own; its features are scored by one linear SVM per class, each class's box is
refined by that class's ridge regressor on pool5 features (appendix C), and each class goes through greedy
NMS (IoU 0.3). Training is a pipeline of stages, :func:`rcnn.tasks.rcnn2014.train_rcnn`.

Shape shorthand:
    N: images; P: proposals of one image; K: foreground classes; S: warped size; C: trunk channels;
    Q: pool5 grid (``pool_size``); Dp = C * Q * Q: pool5 features; D: SVM features (fc7 or pool5).

Features of one warped crop (the CNN of the paper up to fc7, cut the way the backbone package cuts it):
``pool5 = adaptive_max_pool(trunk(crop), Q)`` and ``fc7 = box_head(pool5)``. For AlexNet at S = 227 the
trunk gives 13 x 13 conv5 maps and the adaptive pool to 6 x 6 uses exactly the 3 x 3, stride-2 windows of
the network's own pool5; for VGG at 224 it is pool5's 2 x 2 windows on 14 x 14.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BoxHead
from rcnn.detectors.rcnn2014.warp import warp_boxes
from rcnn.modeling.box_coder import BoxCoder
from rcnn.ops.boxes import batched_nms, clip_boxes_to_image
from rcnn.structures import Detections, Target, check_boxes, check_image

FEATURES = ("fc7", "pool5")


class RCNNHeads(nn.Module):
    """The per-region scorers of R-CNN: K linear SVMs on the D-dim features and K ridge box regressors on
    the Dp-dim pool5 features. Everything is a buffer, set by training (:mod:`rcnn.detectors.rcnn2014.train`).

    Buffers: ``svm_weight (K, D)``, ``svm_bias (K,)``, ``feature_scale ()`` (features are multiplied by it
    before scoring: mean norm 20 on the training set), ``bbox_beta (K, Dp + 1, 4)`` (last row: bias),
    ``bbox_mu (K, 4)`` and ``bbox_t_inv (K, 4, 4)`` (the targets were centred and whitened; this undoes
    it), ``bbox_scale ()`` (pool5 features' scale), ``bbox_trained (K,)`` (0: that class is not regressed).
    """

    def __init__(self, num_classes: int, feature_dim: int, pool5_dim: int, bbox_weights=(1.0, 1.0, 1.0, 1.0)):
        super().__init__()
        self.num_classes = num_classes
        k = num_classes
        self.register_buffer("svm_weight", torch.zeros(k, feature_dim))
        self.register_buffer("svm_bias", torch.zeros(k))
        self.register_buffer("feature_scale", torch.tensor(1.0))
        self.register_buffer("bbox_beta", torch.zeros(k, pool5_dim + 1, 4))
        self.register_buffer("bbox_mu", torch.zeros(k, 4))
        self.register_buffer("bbox_t_inv", torch.eye(4).repeat(k, 1, 1))
        self.register_buffer("bbox_scale", torch.tensor(1.0))
        self.register_buffer("bbox_trained", torch.zeros(k))
        self.box_coder = BoxCoder(bbox_weights)

    def scores(self, features: Tensor) -> Tensor:
        """SVM scores (R, K) of features (R, D)."""
        x = features.float() * self.feature_scale
        return x @ self.svm_weight.t() + self.svm_bias  # (R, K)

    def deltas(self, pool5: Tensor) -> Tensor:
        """Class-specific box deltas (R, K, 4) from flattened pool5 features (R, Dp); 0 for classes without
        a regressor."""
        x = pool5.float() * self.bbox_scale
        x = torch.cat([x, x.new_ones((x.shape[0], 1))], dim=1)  # (R, Dp + 1)
        y = torch.einsum("rd,kdt->rkt", x, self.bbox_beta)  # whitened targets (R, K, 4)
        y = torch.einsum("rkt,kts->rks", y, self.bbox_t_inv) + self.bbox_mu  # (R, K, 4)
        return y * self.bbox_trained[None, :, None]

    def regress(self, pool5: Tensor, proposals: Tensor) -> Tensor:
        """Each proposal (R, 4) moved by each class's regressor: (R, K, 4)."""
        deltas = self.deltas(pool5)
        boxes = self.box_coder.decode(deltas.reshape(deltas.shape[0], -1), proposals)
        return boxes.reshape(-1, self.num_classes, 4)


class RCNN(nn.Module):
    """``model(images, proposals=[(P_i, 4), ...])`` in eval -> N ``{"boxes", "labels", "scores"}`` in the
    pixels of the images passed in (the contract of :class:`GeneralizedRCNN` without an RPN; the
    proposals may also come as ``targets[i]["proposals"]``).

    backbone: the trunk; box_head: the network's region head (fc6-fc7, res5, ...); cls_score: the
    (K + 1)-way classifier of the fine-tuning stage (kept for reference: detection scores are the SVMs');
    heads: :class:`RCNNHeads` (the SVMs and box regressors). images: (3, H_i, W_i) RGB 0..255;
    pixel_mean / pixel_std: RGB 0..255. ``needs_proposals`` is True: the proposals come from outside
    (selective search), as for Fast R-CNN.

    State-dict keys of the scorers are ``heads.*``; checkpoints written when the attribute was named
    ``roi_heads`` still load (their keys are renamed on load).
    """

    needs_proposals = True

    def __init__(
        self,
        backbone: Backbone,
        box_head: BoxHead,
        heads: RCNNHeads,
        *,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_size: int = 227,
        context_padding: int = 16,
        pool_size: int = 0,
        feature: str = "fc7",
        max_proposals: int = 2000,
        batch_size: int = 128,
        nms_thresh: float = 0.3,
        score_thresh: float = -1.0,
        detections_per_img: int = 100,
    ):
        super().__init__()
        if feature not in FEATURES:
            raise ValueError(f"model.rcnn.feature must be one of {FEATURES}, got {feature!r}")
        self.backbone = backbone
        self.box_head = box_head
        self.heads = heads
        self.num_classes = heads.num_classes
        self.cls_score = nn.Linear(box_head.out_channels, self.num_classes + 1)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.zeros_(self.cls_score.bias)
        shapes = backbone.output_shape()
        self.in_feature = max(shapes, key=lambda name: shapes[name].stride)
        self.input_size = int(input_size)
        self.context_padding = int(context_padding)
        self.pool_size = int(pool_size) or box_head.resolution
        self.feature = feature
        self.max_proposals = int(max_proposals)
        self.batch_size = int(batch_size)
        self.nms_thresh = float(nms_thresh)
        self.score_thresh = float(score_thresh)
        self.detections_per_img = int(detections_per_img)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1), False)
        self._register_load_state_dict_pre_hook(_rename_old_head_keys)

    # ---------------------------------------------------------------------------------------- features
    @property
    def pool5_dim(self) -> int:
        shapes = self.backbone.output_shape()
        return shapes[self.in_feature].channels * self.pool_size**2

    @property
    def feature_dim(self) -> int:
        return self.box_head.out_channels if self.feature == "fc7" else self.pool5_dim

    def normalise(self, image: Tensor) -> Tensor:
        """(3, H, W) RGB 0..255 -> normalised (3, H, W) float32 (the mean becomes 0)."""
        return (image.float() - self.pixel_mean) / self.pixel_std

    def warp(self, image: Tensor, boxes: Tensor) -> Tensor:
        """Warped crops (R, 3, S, S) of ``boxes`` (R, 4) with context, from a normalised image (3, H, W)."""
        return warp_boxes(image, boxes, self.input_size, self.context_padding)

    def pool5(self, crops: Tensor) -> Tensor:
        """(R, 3, S, S) -> (R, C, Q, Q): the trunk, then max pooling to the box head's grid."""
        maps = self.backbone(crops)[self.in_feature]
        return F.adaptive_max_pool2d(maps, self.pool_size)

    def fc7(self, pool5: Tensor) -> Tensor:
        """(R, C, Q, Q) -> (R, box_head.out_channels)."""
        return self.box_head(pool5)

    def svm_features(self, pool5: Tensor) -> Tensor:
        """The SVMs' input (R, D): fc7 of ``pool5`` (R, C, Q, Q), or pool5 itself flattened."""
        return self.fc7(pool5) if self.feature == "fc7" else pool5.flatten(1)

    # ---------------------------------------------------------------------------------------- forward
    def forward(
        self,
        images: list[Tensor],
        targets: list[Target] | None = None,
        *,
        proposals: list[Tensor] | None = None,
    ) -> list[Detections]:
        if self.training:
            raise RuntimeError(
                "R-CNN is trained in stages (fine-tuning, feature extraction, SVMs, box regression) by "
                "rcnn.tasks.rcnn2014.train_rcnn, not through model(images, targets); call model.eval() to "
                "detect"
            )
        if proposals is None and targets is not None and all("proposals" in t for t in targets):
            proposals = [t["proposals"] for t in targets]
        if proposals is None:
            raise ValueError("R-CNN needs proposals: model(images, proposals=[(P_i, 4), ...])")
        if len(proposals) != len(images):
            raise ValueError(f"expected proposals for {len(images)} images, got {len(proposals)}")
        detections = []
        for i, (image, boxes) in enumerate(zip(images, proposals)):
            check_image(image, f"images[{i}]")
            check_boxes(boxes, f"proposals[{i}]")
            detections.append(self.detect(image, boxes))
        return detections

    @torch.no_grad()
    def detect(self, image: Tensor, proposals: Tensor) -> Detections:
        """Detections of one image (3, H, W) RGB 0..255 from its proposals (P, 4) in its pixels."""
        device = self.pixel_mean.device
        size = (int(image.shape[-2]), int(image.shape[-1]))
        if self.max_proposals > 0:
            proposals = proposals[: self.max_proposals]
        proposals = proposals.to(device=device, dtype=torch.float32)
        normalised = self.normalise(image.to(device))
        scores, boxes = [], []
        for start in range(0, proposals.shape[0], self.batch_size):
            batch = proposals[start : start + self.batch_size]
            pool5 = self.pool5(self.warp(normalised, batch))  # (B, C, Q, Q)
            scores.append(self.heads.scores(self.svm_features(pool5)))  # (B, K)
            boxes.append(self.heads.regress(pool5.flatten(1), batch))  # (B, K, 4)
        return self.postprocess(scores, boxes, size)

    def postprocess(self, scores: list[Tensor], boxes: list[Tensor], size: tuple[int, int]) -> Detections:
        """Per-class NMS of every (proposal, class) pair above ``score_thresh``; the best
        ``detections_per_img`` overall, by descending score."""
        k = self.num_classes
        device = self.pixel_mean.device
        if not scores:
            return empty_detections(device)
        all_scores = torch.cat(scores).flatten()  # (P * K,)
        all_boxes = clip_boxes_to_image(torch.cat(boxes), size).reshape(-1, 4)  # (P * K, 4)
        labels = torch.arange(1, k + 1, device=device).repeat(all_scores.shape[0] // k)  # (P * K,)
        keep = torch.nonzero(all_scores > self.score_thresh).flatten()
        wide = (all_boxes[:, 2] > all_boxes[:, 0]) & (all_boxes[:, 3] > all_boxes[:, 1])
        keep = keep[wide[keep]]
        all_scores, all_boxes, labels = all_scores[keep], all_boxes[keep], labels[keep]
        keep = batched_nms(all_boxes, all_scores, labels, self.nms_thresh)[: self.detections_per_img]
        return {"boxes": all_boxes[keep], "labels": labels[keep], "scores": all_scores[keep]}


def empty_detections(device: torch.device | str = "cpu") -> Detections:
    return {
        "boxes": torch.zeros((0, 4), device=device),
        "labels": torch.zeros((0,), dtype=torch.int64, device=device),
        "scores": torch.zeros((0,), device=device),
    }


def _rename_old_head_keys(state_dict: dict, prefix: str, *args) -> None:
    """Load hook: the scorers were saved as ``roi_heads.*`` before they became ``heads.*``."""
    old = prefix + "roi_heads."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "heads." + key[len(old) :]] = state_dict.pop(key)


def build_rcnn(
    backbone: Backbone,
    num_classes: int,
    *,
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    input_size: int = 227,
    context_padding: int = 16,
    pool_size: int = 0,
    feature: str = "fc7",
    max_proposals: int = 2000,
    batch_size: int = 128,
    nms_thresh: float = 0.3,
    score_thresh: float = -1.0,
    detections_per_img: int = 100,
) -> RCNN:
    """R-CNN for ``num_classes`` foreground classes on a built ``backbone``: its region head becomes the
    fc6-fc7 part, the scorers are sized from its coarsest feature map (``pool_size`` 0: the box head's
    resolution). The other arguments are :class:`RCNN`'s."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (foreground classes), got {num_classes}")
    box_head = backbone.make_box_head()
    shapes = backbone.output_shape()
    channels = shapes[max(shapes, key=lambda name: shapes[name].stride)].channels
    pool_size = pool_size or box_head.resolution
    feature_dim = box_head.out_channels if feature == "fc7" else channels * pool_size**2
    heads = RCNNHeads(num_classes, feature_dim, channels * pool_size**2)
    return RCNN(
        backbone,
        box_head,
        heads,
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
        input_size=input_size,
        context_padding=context_padding,
        pool_size=pool_size,
        feature=feature,
        max_proposals=max_proposals,
        batch_size=batch_size,
        nms_thresh=nms_thresh,
        score_thresh=score_thresh,
        detections_per_img=detections_per_img,
    )
