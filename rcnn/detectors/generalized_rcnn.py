"""Fast and Faster R-CNN as one plain composition: backbone -> proposals -> RoI heads.

Shape shorthand:
    N: images; H_i, W_i: size of image i; H, W: padded batch size; C: feature channels;
    P_i: proposals of image i; K: foreground classes.

With a ``proposal_generator`` (an RPN) the model is Faster R-CNN (Ren et al., 2015); without one it is
Fast R-CNN (Girshick, 2015) and reads precomputed proposals: ``targets[i]["proposals"]`` in training,
``model(images, proposals=[...])`` in eval. The model normalises and pads; it never resizes, so boxes in
and out are in the pixels of the images passed in.

A trunk with one output (the C4 design) hands that map, ``(N, C, H/stride, W/stride)``, to the RPN and
the RoI heads; a trunk with several (a feature pyramid, :class:`rcnn.modeling.fpn.FPN`) hands them the
whole ``{name: (N, C, H_l, W_l)}`` dict, and each reads the levels it was built for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from backbones.base import Backbone
from backbones.fuse import fold_batchnorm
from rcnn.structures import Detections, Target, check_boxes, check_image, check_target


class GeneralizedRCNN(nn.Module):
    """``model(images, targets)`` in training -> ``{"loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box"}``
    (no RPN losses for Fast R-CNN); ``model(images)`` in eval -> N ``{"boxes", "labels", "scores"}``.

    images: N tensors (3, H_i, W_i), RGB 0..255, sizes may differ; targets: N dicts with ``boxes`` (G, 4)
    xyxy and ``labels`` (G,) in 1..K (crowd boxes, ``iscrowd == 1``, and empty boxes are left out of
    training). pixel_mean / pixel_std: RGB in 0..255. The batch is padded at the bottom and right to a
    multiple of ``size_divisibility`` (default: the coarsest feature stride), so coordinates are unchanged.
    ``needs_proposals``: True without a ``proposal_generator`` (Fast R-CNN).
    """

    def __init__(
        self,
        backbone: Backbone,
        roi_heads: nn.Module,
        *,
        proposal_generator: nn.Module | None = None,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        size_divisibility: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads
        shapes = backbone.output_shape()
        self.in_feature = max(shapes, key=lambda name: shapes[name].stride)  # the coarsest map
        self.multi_level = len(shapes) > 1  # a pyramid: the heads take the dict of levels
        self.size_divisibility = size_divisibility or shapes[self.in_feature].stride
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1), False)
        self.channels_last = False  # memory format of the batch given to the trunk

    @property
    def needs_proposals(self) -> bool:
        """True for Fast R-CNN (no RPN): eval takes ``model(images, proposals=[(P_i, 4), ...])``."""
        return self.proposal_generator is None

    def forward(
        self,
        images: list[Tensor],
        targets: list[Target] | None = None,
        *,
        proposals: list[Tensor] | None = None,
    ) -> dict[str, Tensor] | list[Detections]:
        if self.training:
            targets = self.training_targets(images, targets)
        batch, image_sizes = self.preprocess(images)  # (N, 3, H, W)
        features = self.backbone(batch)  # {name: (N, C, H_l, W_l)}
        if not self.multi_level:
            features = features[self.in_feature]  # (N, C, H/stride, W/stride)
        if self.proposal_generator is not None:
            if proposals is not None:
                raise ValueError("this model has an RPN; 'proposals' are only for Fast R-CNN (no RPN)")
            proposals, proposal_losses = self.proposal_generator(features, image_sizes, targets)
        else:
            proposals, proposal_losses = self.given_proposals(proposals, targets, len(images)), {}
        detections, detector_losses = self.roi_heads(features, proposals, image_sizes, targets)
        if self.training:
            return {**proposal_losses, **detector_losses}
        return detections

    def optimize_for_inference(self, *, fold_bn: bool = True, channels_last: bool = True) -> GeneralizedRCNN:
        """Speed up inference, in place; returns the model, in eval mode. Detections are the same up to float
        rounding (a box or score within ~1e-5 of a threshold or of a tie may come out differently).

        fold_bn: fold batch norm into the convolutions of the trunk and the region head
        (:func:`backbones.fuse.fold_batchnorm`); the folded weights are a different parameterisation, so
        the model is for inference only afterwards. channels_last: see :meth:`use_channels_last`.
        """
        self.eval()
        if fold_bn:
            fold_batchnorm(self.backbone)
            fold_batchnorm(self.roi_heads.box_head)
        if channels_last:
            self.use_channels_last()
        return self

    def use_channels_last(self) -> GeneralizedRCNN:
        """Channels-last (NHWC) weights and activations, in place; returns the model. The batch is given to
        the trunk channels-last, and the pooled RoIs to a convolutional region head (ResNet C4, GoogLeNet);
        oneDNN's CPU convolutions compute in that layout, so they skip the reorders to and from it. The
        model computes the same function (and gradients) up to float rounding, for training too; its
        state_dict is unchanged but for the strides of the weights."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        self.roi_heads.channels_last = any(
            isinstance(m, nn.Conv2d) for m in self.roi_heads.box_head.modules()
        )
        return self

    def preprocess(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """Normalise each image and pad them into one (N, 3, H, W) batch; returns it and the (H_i, W_i)."""
        if not images:
            raise ValueError("expected a non-empty list of images")
        for i, image in enumerate(images):
            check_image(image, f"images[{i}]")
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        d = self.size_divisibility
        height = math.ceil(max(h for h, _ in sizes) / d) * d
        width = math.ceil(max(w for _, w in sizes) / d) * d
        batch = images[0].new_zeros((len(images), 3, height, width), dtype=torch.float32)
        for slot, image, (h, w) in zip(batch, images, sizes):
            slot[:, :h, :w].copy_((image.float() - self.pixel_mean) / self.pixel_std)  # padding: 0 = mean
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch, sizes

    def training_targets(self, images: list[Tensor], targets: list[Target] | None) -> list[Target]:
        """Validate the targets; keep the non-crowd boxes with positive width and height."""
        if targets is None or len(targets) != len(images):
            got = "none" if targets is None else len(targets)
            raise ValueError(f"training needs one target per image: {len(images)} images, targets: {got}")
        cleaned: list[Target] = []
        for i, target in enumerate(targets):
            check_target(target, self.roi_heads.num_classes, where=f"targets[{i}]")
            boxes, labels = target["boxes"], target["labels"]
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            if "iscrowd" in target:
                keep &= target["iscrowd"].to(keep.device) == 0
            device = images[i].device
            new: Target = {"boxes": boxes[keep].float().to(device), "labels": labels[keep].to(device)}
            if "proposals" in target:
                new["proposals"] = target["proposals"]
            cleaned.append(new)
        return cleaned

    def given_proposals(
        self, proposals: list[Tensor] | None, targets: list[Target] | None, num_images: int
    ) -> list[Tensor]:
        """Fast R-CNN's proposals: the ``proposals`` argument, else ``targets[i]["proposals"]``."""
        if proposals is None and targets is not None and all("proposals" in t for t in targets):
            proposals = [t["proposals"] for t in targets]
        if proposals is None:
            raise ValueError(
                "a model without an RPN (Fast R-CNN) needs proposals: targets[i]['proposals'] in training, "
                "model(images, proposals=[(P_i, 4), ...]) in eval"
            )
        if len(proposals) != num_images:
            raise ValueError(f"expected proposals for {num_images} images, got {len(proposals)}")
        device = self.pixel_mean.device
        for i, p in enumerate(proposals):
            check_boxes(p, f"proposals[{i}]")
        return [p.to(device=device, dtype=torch.float32) for p in proposals]
