"""Fast and Faster R-CNN inference as one graph for ONNX export: a batch tensor in, flat detections out.

Shape shorthand:
    N: images (dynamic); H, W: image size (dynamic); T: anchors of one image; k: the RPN's pre-NMS top-n
    (``min(pre_nms_top_n_test, T)``); L: pyramid levels; T_l, k_l: those of level l, M: ``sum(k_l)``;
    R: RoIs of the batch; K: foreground classes; D: detections of the batch.

:class:`ExportableDetector` computes what :meth:`GeneralizedRCNN.forward` computes in eval mode, written
without data-dependent Python: no loop over images, no ``.item()`` / ``.tolist()``, no shape read as a
Python int. The per-image steps (NMS, the RPN's ``post_nms_top_n``, the head's ``detections_per_img``)
run once on the whole batch with the image index as a group (NMS never compares boxes of different
images or classes) and a rank within the image. RoIAlign runs on torchvision's kernel (the exporters know
its ONNX form), not on the CPU kernels of :mod:`rcnn.ops.roi_align_nhwc`. The module is for export; the
eager model keeps its own (faster) paths, and the two give the same detections (tested against each other
and against ONNX Runtime).

Both designs export: one feature map (C4) and a feature pyramid (FPN, :class:`rcnn.modeling.fpn.FPN`).
With a pyramid, the RPN (:class:`~rcnn.modeling.rpn_fpn.MultiLevelRPN`) takes the ``pre_nms_top_n`` best
of each level, NMS runs within each (image, level) group, and the ``post_nms_top_n`` best of the image
are kept in the eager order (score, then level, then rank within the level); RoIs are pooled from the
level of Lin et al.'s eq. 1 (:class:`~rcnn.modeling.poolers.MultiScaleRoIAlign`), level by level.

Inputs: ``images (N, 3, H, W)`` float32 RGB 0..255 (one size for the batch: resize in the data
transforms, as for the eager model); for Fast R-CNN also ``proposals (P, 5)`` float32
``[image_index, x1, y1, x2, y2]`` in image pixels. Outputs: ``boxes (D, 4)`` xyxy in the input's pixels,
``labels (D,)`` int64 in 1..K, ``scores (D,)`` float32 and ``image_index (D,)`` int64, in decreasing
score order (so ``image_index == i`` selects image i's detections in the eager model's order).
"""

from __future__ import annotations

import copy
import os
from typing import BinaryIO

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from rcnn.modeling.poolers import MultiScaleRoIAlign, assign_fpn_levels
from rcnn.ops.boxes import clip_boxes_to_image
from rcnn.ops.roi import RoIAlign

from .generalized_rcnn import GeneralizedRCNN

INPUT_NAMES = ("images", "proposals")
OUTPUT_NAMES = ("boxes", "labels", "scores", "image_index")
MIN_DETECTION_SIZE = 1e-2  # fast_rcnn_inference's min_size
MAX_BATCH, MAX_SIDE = 256, 16384  # bounds of the dynamic dimensions (the exporter needs finite ones)


def grouped_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, extent) -> Tensor:
    """NMS within each group: boxes (M, 4) with coordinates in ``[0, extent)`` (clipped to the image),
    scores (M,), groups (M,) int64 >= 0. Each group is moved to its own region of the plane, then one NMS
    runs. Returns (K,) int64 indices in decreasing score order."""
    shifted = boxes + (groups.to(boxes.dtype) * extent)[:, None]
    keep = torchvision.ops.nms(shifted, scores, iou_threshold)
    torch._check(keep.shape[0] <= boxes.shape[0])  # for the exporter: NMS's output size has no bound
    return keep


def first_per_group(groups: Tensor, num_groups: Tensor | int, limit: int) -> Tensor:
    """A mask (M,) of the first ``limit`` entries of each group, ``groups (M,)`` int64 in
    ``0..num_groups-1``, counted in the given order."""
    one_hot = (groups[:, None] == torch.arange(num_groups, device=groups.device)[None]).long()  # (M, N)
    rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # (M,) place within its group
    return rank < limit


class ExportableDetector(nn.Module):
    """``forward(images (N, 3, H, W)[, proposals (P, 5)]) -> (boxes, labels, scores, image_index)``: the
    eval-mode detections of ``model`` (a copy is kept; ``model`` is unchanged). Hard NMS only: a model
    with Soft-NMS (``model.roi_heads.soft_nms``) is refused."""

    def __init__(self, model: GeneralizedRCNN):
        super().__init__()
        if model.roi_heads.soft_nms != "none":
            raise ValueError(
                "ONNX export supports hard NMS only; "
                f"model.roi_heads.soft_nms is {model.roi_heads.soft_nms!r}"
            )
        self.model = copy.deepcopy(model).eval()
        pooler = self.model.roi_heads.pooler
        poolers = pooler.poolers if isinstance(pooler, MultiScaleRoIAlign) else [pooler]
        for level_pooler in poolers:
            if isinstance(level_pooler, RoIAlign):  # torchvision's kernel: the one with an ONNX form
                level_pooler.cpu_kernel = False
                level_pooler.separable_backward = False

    @property
    def needs_proposals(self) -> bool:
        return self.model.needs_proposals

    def forward(
        self, images: Tensor, proposals: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = self.model
        height, width = images.shape[-2], images.shape[-1]
        d = m.size_divisibility
        batch = (images - m.pixel_mean) / m.pixel_std  # padding below: 0 = the mean, as preprocess
        batch = F.pad(batch, (0, (d - width % d) % d, 0, (d - height % d) % d))
        features = m.backbone(batch)  # {name: (N, C, H_l, W_l)}
        if not m.multi_level:
            features = features[m.in_feature]  # (N, C, H', W')
        if m.proposal_generator is not None:
            propose = self.propose_levels if m.multi_level else self.propose
            rois = propose(features, height, width)  # (R, 5)
        else:
            if proposals is None:
                raise ValueError("a model without an RPN (Fast R-CNN) needs proposals (P, 5)")
            rois = proposals.float()
        return self.detect(features, rois, images.shape[0], height, width)

    def propose(self, features: Tensor, height, width) -> Tensor:
        """The RPN's proposals of the batch as RoIs (R, 5) ``[image_index, x1, y1, x2, y2]``, each image's
        in decreasing objectness (:meth:`RegionProposalNetwork.select_proposals` in test mode)."""
        rpn = self.model.proposal_generator
        objectness, deltas = rpn.head(features)  # (N, A, H', W'), (N, 4A, H', W')
        n, a, fh, fw = objectness.shape
        anchors = rpn.anchor_generator.grid_anchors(fh, fw, features.device)  # (T, 4)
        objectness = objectness.permute(0, 2, 3, 1).reshape(n, -1)  # (N, T)
        deltas = deltas.reshape(n, a, 4, fh, fw).permute(0, 3, 4, 1, 2).reshape(-1, 4)  # (N*T, 4)
        boxes = rpn.box_coder.decode(deltas, anchors.repeat(n, 1)).reshape(n, -1, 4)
        boxes = clip_boxes_to_image(boxes, (height, width))  # (N, T, 4)
        big_enough = ((boxes[..., 2] - boxes[..., 0]) >= rpn.min_size) & (
            (boxes[..., 3] - boxes[..., 1]) >= rpn.min_size
        )
        scores = torch.where(big_enough, objectness.float(), float("-inf"))  # (N, T)
        k = torch.sym_min(rpn.pre_nms_top_n["test"], objectness.shape[1])
        top_scores, top_idx = scores.topk(k, dim=1)  # (N, k)
        top_boxes = boxes.gather(1, top_idx[..., None].expand(-1, -1, 4)).reshape(-1, 4)  # (N*k, 4)
        top_scores = top_scores.reshape(-1)
        image = torch.arange(n, device=features.device)[:, None].expand(-1, k).reshape(-1)  # (N*k,)
        valid = torch.nonzero(torch.isfinite(top_scores)).flatten()
        top_boxes, top_scores, image = top_boxes[valid], top_scores[valid], image[valid]
        keep = grouped_nms(top_boxes, top_scores, image, rpn.nms_thresh, torch.sym_max(height, width) + 1)
        keep = keep[first_per_group(image[keep], n, rpn.post_nms_top_n["test"])]
        return torch.cat([image[keep, None].to(top_boxes.dtype), top_boxes[keep]], dim=1)

    def propose_levels(self, features: dict[str, Tensor], height, width) -> Tensor:
        """The pyramid RPN's proposals of the batch as RoIs (R, 5) ``[image_index, x1, y1, x2, y2]``
        (:meth:`MultiLevelRPN.select_level_proposals` in test mode)."""
        rpn = self.model.proposal_generator
        boxes, scores, levels = [], [], []
        for level, (name, generator) in enumerate(zip(rpn.in_features, rpn.anchor_generator.levels)):
            objectness, deltas = rpn.head(features[name])  # (N, A, H_l, W_l), (N, 4A, H_l, W_l)
            n, a, fh, fw = objectness.shape
            anchors = generator.grid_anchors(fh, fw, objectness.device)  # (T_l, 4)
            objectness = objectness.permute(0, 2, 3, 1).reshape(n, -1).float()  # (N, T_l)
            deltas = deltas.reshape(n, a, 4, fh, fw).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)  # (N, T_l, 4)
            k = torch.sym_min(rpn.pre_nms_top_n["test"], objectness.shape[1])
            top_scores, top_idx = objectness.topk(k, dim=1)  # (N, k_l), best first
            chosen = deltas.gather(1, top_idx[..., None].expand(-1, -1, 4)).reshape(-1, 4)  # (N*k_l, 4)
            boxes.append(rpn.box_coder.decode(chosen, anchors[top_idx.reshape(-1)]).reshape(n, -1, 4))
            scores.append(top_scores)
            levels.append(torch.full_like(top_idx, level))
        n = scores[0].shape[0]
        boxes_t = clip_boxes_to_image(torch.cat(boxes, 1), (height, width)).reshape(-1, 4)  # (N*M, 4)
        level_t = torch.cat(levels, 1)  # (N, M)
        image = torch.arange(n, device=level_t.device)[:, None].expand_as(level_t).reshape(-1)  # (N*M,)
        scores_t, level_t = torch.cat(scores, 1).reshape(-1), level_t.reshape(-1)
        big_enough = ((boxes_t[:, 2] - boxes_t[:, 0]) >= rpn.min_size) & (
            (boxes_t[:, 3] - boxes_t[:, 1]) >= rpn.min_size
        )
        valid = torch.nonzero(big_enough).flatten()  # image, level, rank order
        boxes_t, scores_t, level_t, image = boxes_t[valid], scores_t[valid], level_t[valid], image[valid]
        extent = torch.sym_max(height, width) + 1
        groups = image * len(levels) + level_t  # levels never suppress each other
        keep = grouped_nms(boxes_t, scores_t, groups, rpn.nms_thresh, extent)
        kept = torch.zeros_like(scores_t, dtype=torch.bool).index_fill(0, keep, True)
        keep = torch.nonzero(kept).flatten()  # back to image, level, rank order
        # best first; ties (ONNX TopK: lower index first): the lower level, then the better rank
        keep = keep[scores_t[keep].topk(keep.shape[0]).indices]
        keep = keep[first_per_group(image[keep], n, rpn.post_nms_top_n["test"])]
        return torch.cat([image[keep, None].to(boxes_t.dtype), boxes_t[keep]], dim=1)

    def pool(self, features: Tensor | dict[str, Tensor], rois: Tensor) -> Tensor:
        """RoIs (R, 5) pooled to (R, C, S, S); from a pyramid, each from its level (as
        :class:`MultiScaleRoIAlign`)."""
        pooler = self.model.roi_heads.pooler
        if not isinstance(pooler, MultiScaleRoIAlign):
            return pooler(features, rois)
        levels = (
            assign_fpn_levels(
                rois[:, 1:], pooler.min_level, pooler.max_level, pooler.canonical_level, pooler.canonical_size
            )
            - pooler.min_level
        )  # (R,)
        maps = [features[name] for name in pooler.in_features]
        out = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], *pooler.output_size))  # (R, C, S, S)
        for level, (feature, level_pooler) in enumerate(zip(maps, pooler.poolers)):
            index = torch.nonzero(levels == level).flatten()
            out = out.index_copy(0, index, level_pooler(feature, rois[index]).to(out.dtype))
        return out

    def detect(
        self, features: Tensor | dict[str, Tensor], rois: Tensor, num_images, height, width
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The region head and the per-class post-processing (:func:`fast_rcnn_inference`, hard NMS) of
        RoIs (R, 5); returns the flat detections of the batch (see the module docstring)."""
        heads = self.model.roi_heads
        pooled = self.pool(features, rois)  # (R, C, S, S)
        class_logits, box_deltas = heads.predictor(heads.box_head(pooled))  # (R, K+1), (R, 4C)
        num_classes = class_logits.shape[1] - 1
        scores = torch.softmax(class_logits.float(), dim=-1)[:, 1:]  # (R, K)
        boxes = heads.box_coder.decode(box_deltas, rois[:, 1:])
        boxes = boxes.reshape(rois.shape[0], -1, 4)[:, -num_classes:]  # (R, K, 4)
        boxes = clip_boxes_to_image(boxes, (height, width)).reshape(-1, 4)  # (R*K, 4)
        labels = torch.arange(1, num_classes + 1, device=rois.device).expand_as(scores).reshape(-1)
        image = rois[:, 0].long()[:, None].expand_as(scores).reshape(-1)  # (R*K,)
        scores = scores.reshape(-1)
        ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        candidate = (scores > heads.score_thresh) & (ws >= MIN_DETECTION_SIZE) & (hs >= MIN_DETECTION_SIZE)
        keep = torch.nonzero(candidate).flatten()
        boxes, scores, labels, image = boxes[keep], scores[keep], labels[keep], image[keep]
        extent = torch.sym_max(height, width) + 1
        keep = grouped_nms(boxes, scores, image * num_classes + labels - 1, heads.nms_thresh, extent)
        keep = keep[first_per_group(image[keep], num_images, heads.detections_per_img)]
        return boxes[keep], labels[keep], scores[keep], image[keep]


def _roi_pool_translation():
    """ONNX's MaxRoiPool for ``torchvision::roi_pool`` (the same Caffe rounding as torchvision's kernel):
    onnxscript's own translation takes the arguments of the Python function, not of the op."""
    # optional: onnxscript, the export extra (pip install -e .[export]), only when exporting
    from onnxscript import opset18 as op

    def roi_pool(input, rois, spatial_scale: float, pooled_height: int, pooled_width: int):
        out = op.MaxRoiPool(
            input, rois, pooled_shape=(pooled_height, pooled_width), spatial_scale=spatial_scale
        )
        return out, op.Cast(out, to=7)  # (pooled, argmax): the argmax (int64) is for backward only

    return {torch.ops.torchvision.roi_pool.default: roi_pool}


def export_onnx(
    model: GeneralizedRCNN,
    path: str | BinaryIO,
    *,
    opset: int = 18,
    example_size: tuple[int, int] = (96, 128),
    metadata: dict[str, str] | None = None,
) -> str | BinaryIO:
    """Write ``model``'s inference (:class:`ExportableDetector`) to the ONNX file ``path`` (a path or a
    binary file object) with a dynamic batch, height and width; returns ``path``. The graph is traced on
    the model's device with a batch of two random images of ``example_size`` (H, W); any size from twice
    the feature stride up works afterwards. ``metadata``: strings stored in the model's ``metadata_props``
    (see :mod:`.onnx_runtime`)."""
    wrapper = ExportableDetector(model).eval()
    device = wrapper.model.pixel_mean.device
    h, w = example_size
    images = torch.rand(2, 3, h, w, device=device) * 255  # a batch of 2: a batch of 1 is specialised to 1
    side = 2 * wrapper.model.size_divisibility  # a smaller image would give a 1-cell feature map
    dims = {
        0: torch.export.Dim("batch", min=1, max=MAX_BATCH),
        2: torch.export.Dim("height", min=side, max=MAX_SIDE),
        3: torch.export.Dim("width", min=side, max=MAX_SIDE),
    }
    args: tuple[Tensor, ...] = (images,)
    dynamic: dict[str, dict] = {"images": dims}
    if wrapper.needs_proposals:
        proposals = torch.tensor(
            [[0, 4, 4, w / 2, h / 2], [1, 8, 8, w - 4, h - 4], [0, 0, 0, w, h]], device=device
        )
        args = (images, proposals)
        dynamic["proposals"] = {0: torch.export.Dim("num_proposals", min=0, max=MAX_SIDE * 64)}
    program = torch.onnx.export(
        wrapper,
        args,
        input_names=list(INPUT_NAMES[: len(args)]),
        output_names=list(OUTPUT_NAMES),
        opset_version=opset,
        dynamic_shapes=dynamic,
        dynamo=True,
        custom_translation_table=_roi_pool_translation(),
        verbose=False,
    )
    proto = program.model_proto
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if not isinstance(path, (str, os.PathLike)):  # a file object (an atomic write): the serialised graph
        path.write(proto.SerializeToString())
        return path
    # optional: onnx, the export extra (pip install -e .[export]), only when exporting
    import onnx

    onnx.save(proto, path)
    return path
