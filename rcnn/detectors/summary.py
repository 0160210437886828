"""Whole-detector summary: parameters, multiply-adds and activations per image, split by part.

    s = summarize_detector(build_detector(cfg.model, num_classes), (600, 1000))
    print(s.table())
    s.parts["trunk"].macs, s.macs, s.activation_mb

The parts are the Faster R-CNN paper's split of the work: ``trunk`` (the shared convolutions, run once on
the padded image), ``rpn`` (the RPN head's convolutions on the trunk's feature map), ``region_head`` (the
network's per-RoI layers, run on ``num_rois`` pooled RoIs) and ``predictor`` (the class-score and
box-regression layers on those RoIs). Per image, batch 1:

* **params**: the parameters of the part's modules; the parts hold every parameter of the detector once
  (the backbone object also holds the region head it hands over: those count in ``region_head``).
* **MACs**: counted by ``torch.utils.flop_counter.FlopCounterMode`` while the part runs, ``flops // 2``.
  It counts convolutions and matrix products (``out_values * in_channels / groups * kernel_area``, biases
  not included), the same rule as the per-layer table of :mod:`backbones.summary`, so the trunk and the
  region head equal the classifier's rows for the same layers. Anchor generation, box decoding, NMS, RoI
  pooling and the per-class post-processing hold no matrix products and count 0, as in the papers.
* **activations**: the values of the outputs of the layers that produce a new tensor in one eval forward
  (convolutions, linear layers, LRN, shape-changing pooling: the rule of :mod:`backbones.summary`), plus
  the padded input image and the pooled RoIs (``num_rois x C x S x S``, the RoI pooler's output). A tensor
  is counted once, by the part that makes it. ``activation_mb`` is their fp32 size. This is a count, not a
  torch memory measurement: it is the same on every device and allocator (and on the ``meta`` device, so
  a VGG-16 at 600x1000 is summarised instantly), whereas a measured peak depends on when the allocator
  frees each tensor (under ``no_grad`` most are freed at once) and on in-place kernels; it is also what a
  training step must keep for the backward pass, up to the element-wise layers taken as in place.

The RoIs are the configured test-time number (the RPN's ``post_nms_top_n_test`` for Faster R-CNN); the
region head's cost is linear in it. Only shapes are used: run on a model built under
``with torch.device("meta"):`` for the same numbers without memory or initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from backbones.summary import summarize

from .generalized_rcnn import GeneralizedRCNN

PARTS = ("trunk", "rpn", "region_head", "predictor")


@dataclass(frozen=True)
class PartSummary:
    """One part of the detector, per image."""

    name: str
    params: int
    macs: int
    activations: int
    input_shape: tuple[int, ...]  # what the part runs on, batch included (the RoIs for the heads)


@dataclass
class DetectorSummary:
    """The result of :func:`summarize_detector`; ``str(summary)`` is :meth:`table`."""

    model_name: str
    image_size: tuple[int, int]  # (H, W) asked for
    padded_size: tuple[int, int]  # (H, W) the trunk runs on: padded to the model's size_divisibility
    num_rois: int
    parts: dict[str, PartSummary]

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts.values())

    @property
    def macs(self) -> int:
        return sum(p.macs for p in self.parts.values())

    @property
    def activations(self) -> int:
        return sum(p.activations for p in self.parts.values())

    @property
    def activation_mb(self) -> float:
        """fp32 size of the counted activations of one image, in MiB."""
        return self.activations * 4 / 2**20

    def table(self) -> str:
        header = ("Part", "Runs on", "Params", "MACs", "MACs %", "Activations")
        total = max(self.macs, 1)
        lines = [
            (
                p.name,
                "x".join(map(str, p.input_shape)),
                f"{p.params:,}",
                f"{p.macs:,}",
                f"{100 * p.macs / total:.1f}",
                f"{p.activations:,}",
            )
            for p in self.parts.values()
        ]
        lines.append(("total", "", f"{self.params:,}", f"{self.macs:,}", "100.0", f"{self.activations:,}"))
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

        def fmt(cells: tuple[str, ...]) -> str:
            left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2])]
            right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(fmt(tuple("-" * w for w in widths)))
        h, w = self.image_size
        ph, pw = self.padded_size
        padded = f" (padded to {ph}x{pw})" if (ph, pw) != (h, w) else ""
        return "\n".join(
            [
                fmt(header),
                rule,
                *(fmt(line) for line in lines[:-1]),
                rule,
                fmt(lines[-1]),
                f"{self.model_name}, image {h}x{w}{padded}, {self.num_rois} RoIs, per image:",
                f"  parameters   {self.params:,} ({_human(self.params)})",
                f"  MACs         {self.macs:,} ({_human(self.macs)} multiply-adds)",
                f"  activations  {self.activations:,} ({_human(self.activations)} values;"
                f" {self.activation_mb:.2f} MiB in fp32, forward only)",
            ]
        )

    def __str__(self) -> str:
        return self.table()


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def count_macs(fn: Callable[[], object]) -> int:
    """Multiply-adds of ``fn()`` as ``torch.utils.flop_counter.FlopCounterMode`` counts them (FLOPs / 2)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() // 2


def _params(module: nn.Module, *, excluding: nn.Module | None = None) -> int:
    """Parameters of ``module``, shared ones once, leaving out those of ``excluding``."""
    left_out = {id(p) for p in excluding.parameters()} if excluding is not None else set()
    return sum(p.numel() for p in module.parameters() if id(p) not in left_out)


def summarize_detector(
    model: GeneralizedRCNN,
    image_size: tuple[int, int],
    *,
    num_rois: int | None = None,
    name: str | None = None,
) -> DetectorSummary:
    """Summarise ``model`` on one ``image_size`` (H, W) image (see the module docstring).

    num_rois: RoIs the heads run on; default the RPN's test-time ``post_nms_top_n``. A Fast R-CNN model
    (no RPN) needs it. The model's training mode is restored afterwards.
    """
    if not isinstance(model, GeneralizedRCNN):
        raise TypeError(f"expected a Fast or Faster R-CNN (GeneralizedRCNN), got {type(model).__name__}")
    rpn = model.proposal_generator
    if num_rois is None:
        if rpn is None:
            raise ValueError("a Fast R-CNN model takes its proposals from the data: give num_rois")
        num_rois = int(rpn.post_nms_top_n["test"])
    if num_rois < 1:
        raise ValueError(f"num_rois must be >= 1, got {num_rois}")
    h, w = (int(v) for v in image_size)
    d = model.size_divisibility
    padded = (math.ceil(h / d) * d, math.ceil(w / d) * d)
    device = model.pixel_mean.device
    heads = model.roi_heads
    box_head, predictor = heads.box_head, heads.predictor
    resolution = heads.pooler.output_size  # (S, S)
    channels = model.backbone.output_shape()[model.in_feature].channels

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            image = torch.zeros((1, 3, *padded), device=device)
            trunk_macs = count_macs(lambda: model.backbone(image))
            outputs = model.backbone(image)
            levels = list(outputs.values()) if model.multi_level else [outputs[model.in_feature]]
            features: Tensor = levels[0]  # (1, C, H/s, W/s); a pyramid: its finest level
            rois = torch.zeros((num_rois, channels, *resolution), device=device)  # (R, C, S, S)
            region_macs = count_macs(lambda: box_head(rois))
            box_features = box_head(rois)  # (R, D)
            predictor_macs = count_macs(lambda: predictor(box_features))
            rpn_macs = sum(count_macs(lambda f=f: rpn.head(f)) for f in levels) if rpn is not None else 0

        # activations: backbones.summary's rule; each part's input is counted by the part that made it
        trunk_act = summarize(model.backbone, (3, *padded)).activations  # input image included
        per_roi = summarize(box_head, (channels, *resolution)).activations  # pooled RoI included
        box_dim = int(box_features.shape[1])
        pred_act = (summarize(predictor, (box_dim,)).activations - box_dim) * num_rois
        parts = {
            "trunk": PartSummary(
                "trunk",
                _params(model.backbone, excluding=box_head),
                trunk_macs,
                trunk_act,
                tuple(image.shape),
            )  # the backbone also holds the region head it hands over: counted there
        }
        if rpn is not None:
            feat_shape = tuple(features.shape)
            rpn_act = sum(
                summarize(rpn.head, tuple(f.shape[1:])).activations - math.prod(f.shape[1:]) for f in levels
            )
            parts["rpn"] = PartSummary("rpn", _params(rpn), rpn_macs, rpn_act, feat_shape)
        parts["region_head"] = PartSummary(
            "region_head", _params(box_head), region_macs, per_roi * num_rois, tuple(rois.shape)
        )
        parts["predictor"] = PartSummary(
            "predictor", _params(predictor), predictor_macs, pred_act, tuple(box_features.shape)
        )
    finally:
        model.train(was_training)
    return DetectorSummary(
        model_name=name or type(model).__name__,
        image_size=(h, w),
        padded_size=padded,
        num_rois=num_rois,
        parts=parts,
    )
