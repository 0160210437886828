"""A trained Faster R-CNN's RPN as a proposal method: its proposals for every image of a split, in the
cache format of selective search (:class:`rcnn.proposals.cache.ProposalCache`), so Fast R-CNN trains and
tests on them (step 2 of the Faster R-CNN paper's alternating training, Sec. 3.2) and
``tools/evaluate.py --proposals`` scores them like any other.

The RPN sees each image as the detector does at test time (``test.min_size`` / ``test.max_size``); its
proposals (NMS at ``model.rpn.nms_thresh`` over the ``model.rpn.pre_nms_top_n_test`` best anchors, then the
``proposals.max_boxes`` best, ranked by objectness) are mapped back to the pixels of the image file. The
cache's ``params.json`` records the checkpoint (path and SHA-256) and these settings, so proposals of
another checkpoint or setting are never mixed into the folder.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import CocoDetection
from rcnn.data.collate import collate_detection
from rcnn.data.transforms import build_detection_transforms
from rcnn.proposals.cache import ProposalCache

RPN_CODE_VERSION = "rpn-1"  # bump when a change to the RPN's proposal selection changes its boxes


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def rpn_params(cfg: DetectionConfig, checkpoint: str) -> dict[str, Any]:
    """The parameters recorded in the cache's ``params.json`` for the RPN of ``checkpoint``."""
    rpn = cfg.model.rpn
    return {
        "method": "rpn",
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
        "max_boxes": int(cfg.proposals.max_boxes),
        "pre_nms_top_n": int(rpn.pre_nms_top_n_test),
        "nms_thresh": float(rpn.nms_thresh),
        "min_size": float(rpn.min_size),
        "test_min_size": int(cfg.test.min_size),
        "test_max_size": int(cfg.test.max_size),
        "code_version": RPN_CODE_VERSION,
    }


@torch.inference_mode()
def rpn_proposals(model: nn.Module, images: list[Tensor], max_boxes: int = 0) -> list[Tensor]:
    """The test-mode RPN proposals of a Faster R-CNN (``model.proposal_generator``) for ``images``
    (3, H_i, W_i): a list of (P_i, 4) x1y1x2y2 in the images' pixels, best first, at most ``max_boxes``
    (0: the RPN's ``pre_nms_top_n`` test value, i.e. all that survive NMS). The model's mode is restored."""
    rpn = model.proposal_generator
    if rpn is None:
        raise ValueError("the model has no RPN (Fast R-CNN): it cannot propose boxes")
    was_training, saved = model.training, dict(rpn.post_nms_top_n)
    model.eval()
    try:
        rpn.post_nms_top_n["test"] = max_boxes or rpn.pre_nms_top_n["test"]
        batch, sizes = model.preprocess(images)
        features = model.backbone(batch)[model.in_feature]
        proposals, _ = rpn(features, sizes)
    finally:
        rpn.post_nms_top_n.update(saved)
        model.train(was_training)
    return proposals


def to_file_pixels(boxes: Tensor, size: Tensor, orig_size: Tensor) -> Tensor:
    """Boxes (P, 4) of the transformed image (``size`` = [H, W]) in the file's ``orig_size`` pixels."""
    sy, sx = float(orig_size[0]) / float(size[0]), float(orig_size[1]) / float(size[1])
    out = boxes.float().cpu() * torch.tensor([sx, sy, sx, sy])
    out[:, 0::2] = out[:, 0::2].clamp(0, float(orig_size[1]))
    out[:, 1::2] = out[:, 1::2].clamp(0, float(orig_size[0]))
    return out


def rpn_dataset(cfg: DetectionConfig, images: str, annotations: str) -> CocoDetection:
    """Every image of a split (also those without annotations) at the test scale, without proposals."""
    transforms = build_detection_transforms(False, [cfg.test.min_size], cfg.test.max_size)
    return CocoDetection(images, annotations, transforms, filter_empty=False, skip_invalid=False)


def compute_rpn_missing(
    model: nn.Module,
    dataset: CocoDetection,
    cache: ProposalCache,
    device: torch.device,
    *,
    max_boxes: int,
    batch_size: int = 1,
    progress: bool = True,
) -> list[float]:
    """Store the RPN proposals of the images of ``dataset`` that ``cache`` lacks (each as soon as its batch
    is done). Returns the seconds per computed image (its batch's time divided by the batch size)."""
    missing = set(cache.missing(dataset.ids))
    todo = [i for i, image_id in enumerate(dataset.ids) if image_id in missing]
    subset = torch.utils.data.Subset(dataset, todo)
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, collate_fn=collate_detection)
    seconds: list[float] = []
    for images, targets in tqdm(loader, desc="rpn proposals", disable=not progress, dynamic_ncols=True):
        start = time.perf_counter()
        proposals = rpn_proposals(model, [img.to(device) for img in images], max_boxes)
        took = (time.perf_counter() - start) / len(images)
        for boxes, target in zip(proposals, targets):
            cache.put(
                int(target["image_id"]), to_file_pixels(boxes, target["size"], target["orig_size"]).numpy()
            )
            seconds.append(took)
    return seconds
