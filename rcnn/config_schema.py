"""The config schemas: one dataclass per section. Every field has a default; YAML files and
``section.key=value`` overrides change only what they name.

Detection (``tools/train_detector.py``, ``infer.py``, ``evaluate.py``, ``compute_proposals.py``):
``DetectionConfig(model, data, solver, test, output, proposals)``. Classification pretraining
(``tools/train_classifier.py``): ``ClassificationConfig(model, data, solver, test, output)``.

Fixed choices are ``Literal`` types; value checks sit next to their fields (``checked(default, *checks)``,
see :mod:`rcnn.config`); ``check_section()`` holds the checks that involve several fields of a section.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import backbones
from rcnn.config import checked, device_name, fraction, increasing, non_empty, non_negative, positive


def backbone_name(name: str) -> str | None:
    """A network of :data:`backbones.CLASSIFIERS`, with the closest name suggested."""
    if name in backbones.CLASSIFIERS:
        return None
    close = difflib.get_close_matches(name, list(backbones.CLASSIFIERS), n=1, cutoff=0.5)
    if close:
        return f"unknown network; did you mean '{close[0]}'?"
    return f"unknown network; available: {', '.join(sorted(backbones.CLASSIFIERS))}"


def _backbone_options(name: str, options: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Problems of ``options`` (the builder's keyword arguments) for the network ``name``."""
    for key, value in options.items():
        if value is None and isinstance(key, str) and ":" in key:  # YAML reads {width:8} as {"width:8": None}
            option, _, given = key.partition(":")
            yield (
                "options",
                (
                    f"YAML read '{key}' as an option name without a value; "
                    f"write a space after the colon: {{{option.strip()}: {given.strip()}}}"
                ),
            )
            return
    accepted = backbones.accepted_options(name) if name in backbones.CLASSIFIERS else None
    unknown = sorted(str(k) for k in options if accepted is not None and k not in accepted)
    if unknown:
        yield (
            "options",
            (
                f"{name} has no option {', '.join(repr(k) for k in unknown)}; "
                f"its options: {', '.join(sorted(accepted or ())) or 'none'}"
            ),
        )


# ----------------------------------------------------------------------------------------------- detection


@dataclass
class BackboneConfig:
    name: str = checked("resnet18", backbone_name)
    weights: str = ""  # local checkpoint: torchvision/timm state_dict or a classifier trained by rcnn
    # 0: train everything; 1: freeze the stem; k: freeze the stem and k-1 stages
    freeze_at: int = checked(1, non_negative)
    frozen_bn: bool = True  # batch norm as a fixed affine transform (statistics of the checkpoint)
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments to the builder

    def check_section(self) -> Iterator[tuple[str, str]]:
        yield from _backbone_options(self.name, self.options)


@dataclass
class RPNConfig:
    anchor_sizes: list[float] = checked([128.0, 256.0, 512.0], non_empty, positive)
    aspect_ratios: list[float] = checked([0.5, 1.0, 2.0], non_empty, positive)
    fg_iou_thresh: float = checked(0.7, fraction)
    bg_iou_thresh: float = checked(0.3, fraction)
    batch_size_per_image: int = checked(256, positive)
    positive_fraction: float = checked(0.5, fraction)
    pre_nms_top_n_train: int = checked(12000, positive)
    pre_nms_top_n_test: int = checked(6000, positive)
    post_nms_top_n_train: int = checked(2000, positive)
    post_nms_top_n_test: int = checked(300, positive)
    nms_thresh: float = checked(0.7, fraction)
    min_size: float = checked(16.0, non_negative)
    smooth_l1_beta: float = 0.1111111111111111
    # anchors that cross the image boundary take no part in the loss (Ren et al.); torchvision keeps them
    ignore_cross_boundary: bool = True
    anchor_offset: float = checked(0.5, fraction)  # centres at (x + offset) * stride; torchvision: 0
    round_anchors: bool = False  # cell anchors rounded to whole pixels, as torchvision's


@dataclass
class RoIHeadsConfig:
    pooler: Literal["roi_pool", "roi_align"] = "roi_pool"
    # 0: the box head's own size (7 for VGG fc6, 14 for ResNet C4 res5)
    pooler_resolution: int = checked(0, non_negative)
    sampling_ratio: int = 2  # roi_align only
    aligned: bool = True  # roi_align only: half-pixel-corrected sampling (torchvision's FPN: false)
    batch_size_per_image: int = checked(128, positive)
    positive_fraction: float = checked(0.25, fraction)
    fg_iou_thresh: float = checked(0.5, fraction)
    bg_iou_thresh_lo: float = checked(0.0, fraction)  # Fast R-CNN used [0.1, 0.5)
    bg_iou_thresh_hi: float = checked(0.5, fraction)
    add_gt_as_proposals: bool = True
    bbox_reg_weights: list[float] = field(default_factory=lambda: [10.0, 10.0, 5.0, 5.0])
    smooth_l1_beta: float = 1.0
    score_thresh: float = checked(0.05, fraction)
    nms_thresh: float = checked(0.3, fraction)
    detections_per_img: int = checked(100, positive)
    soft_nms: Literal["none", "linear", "gaussian"] = "none"
    soft_nms_sigma: float = checked(0.5, positive)
    svd_rank: int = checked(0, non_negative)  # Fast R-CNN: truncated SVD of the fc layers at test (0: off)


@dataclass
class RCNNConfig:
    """R-CNN (Girshick et al., 2014): warped proposals, CNN features, per-class linear SVMs, ridge box
    regression. ``solver.*`` is the solver of the fine-tuning stage (the paper: SGD, lr 0.001)."""

    input_size: int = checked(224, positive)  # side of the warped crops (227 for AlexNet, as the paper)
    context_padding: int = 16  # pixels of context around the box at the warped size (the paper: p = 16)
    pool_size: int = 0  # grid of "pool5" (adaptive max pool of the trunk output); 0: the box head's own
    feature: Literal["fc7", "pool5"] = "fc7"  # SVM features: the box head's output, or "pool5"
    finetune: bool = True  # fine-tune the network on warped proposals before extracting features
    fg_iou: float = 0.5  # fine-tuning: IoU >= fg_iou with a gt box -> its class, else background
    batch_pos: int = 32  # fine-tuning mini-batch: positives ...
    batch_neg: int = 96  # ... and background windows
    max_proposals: int = 2000  # per image, the first ones of the proposals file (0: all)
    svm_C: float = 0.001
    svm_pos_weight: float = 2.0  # loss weight of the positives (the original code's pos_loss_weight)
    svm_neg_iou: float = 0.3  # SVM negatives: IoU < this with every instance of the class
    svm_init_negatives: int = 5000  # per class: random negatives of the first SVM
    hard_negative_rounds: int = 3  # passes over the cache adding negatives scored > -1, each then retraining
    feature_norm: float = 20.0  # features are scaled so that their mean L2 norm is this (original code)
    bbox_reg: bool = True
    bbox_reg_lambda: float = 1000.0
    bbox_reg_iou: float = 0.6  # regression examples: proposals with IoU >= this with their best gt box
    nms_thresh: float = 0.3
    score_thresh: float = -1.0  # SVM margin: scores below -1 are confident negatives
    detections_per_img: int = 100
    batch_size: int = checked(128, positive)  # crops per forward pass in feature extraction and testing
    cache_dir: str = ""  # "": output.dir/features
    # proposals per feature-cache chunk (whole images: a chunk may hold more)
    chunk_size: int = checked(4096, positive)
    cache_dtype: Literal["float16", "float32"] = "float16"


@dataclass
class FPNConfig:
    """The Feature Pyramid Network detector (``model.neck: fpn``): pyramid width and box head width."""

    out_channels: int = checked(256, positive)  # channels of every level P2-P6
    # the finest level: 2 (P2-P5 from C2-C5, stride 4: torchvision's and the paper's) or 3 (P3-P5 from
    # C3-C5: no stride-4 convolutions, far cheaper on small images; rpn.anchor_sizes then has 4 sizes)
    min_level: Literal[2, 3] = 2
    representation_size: int = checked(1024, positive)  # fc6 / fc7 of the TwoMLPHead box head


@dataclass
class ModelConfig:
    type: Literal["faster_rcnn", "fast_rcnn", "rcnn"] = "faster_rcnn"
    # "none": the backbone's C4 cut (its last stage as region head); "fpn": a Feature Pyramid Network on
    # C2-C5 with a two-fc box head (ResNet family; one anchor size per level P2-P6 in rpn.anchor_sizes)
    neck: Literal["none", "fpn"] = "none"
    fpn: FPNConfig = field(default_factory=FPNConfig)
    num_classes: int = checked(0, non_negative)  # 0: the number of categories of the training set
    weights: str = ""  # a trained detector (.pth) to start a new training from (tasks/detector_weights.py)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi_heads: RoIHeadsConfig = field(default_factory=RoIHeadsConfig)
    rcnn: RCNNConfig = field(default_factory=RCNNConfig)  # model.type "rcnn" only
    pixel_mean: list[float] = field(default_factory=lambda: [123.675, 116.28, 103.53])  # RGB, 0..255
    pixel_std: list[float] = checked([58.395, 57.12, 57.375], positive)


@dataclass
class DataConfig:
    train_images: str = "datasets/synthetic/detection/train"
    train_annotations: str = "datasets/synthetic/detection/train.json"
    val_images: str = "datasets/synthetic/detection/val"
    val_annotations: str = "datasets/synthetic/detection/val.json"
    train_proposals: str = ""  # Fast R-CNN / R-CNN: proposals cache (tools/compute_proposals.py)
    val_proposals: str = ""
    min_size: list[int] = checked([600], non_empty, positive)  # shorter side; several: multi-scale train
    max_size: int = checked(1000, positive)  # cap on the longer side
    hflip_prob: float = checked(0.5, fraction)
    color_jitter: float = checked(0.0, non_negative)  # brightness/contrast/saturation jitter (0: off)
    filter_empty: bool = True  # drop training images without (non-crowd) objects
    skip_invalid: bool = False  # skip bad records with a warning instead of stopping
    aspect_ratio_grouping: bool = True
    num_workers: int = checked(2, non_negative)


@dataclass
class SolverConfig:
    device: str = checked("auto", device_name)  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    seed: int = 0
    ims_per_batch: int = checked(2, positive)  # per process
    base_lr: float = checked(0.01, positive)
    momentum: float = checked(0.9, non_negative)
    weight_decay: float = checked(1e-4, non_negative)
    warmup_iters: int = checked(500, non_negative)
    warmup_factor: float = checked(0.001, positive)
    steps: list[int] = checked([6000, 8000], positive, increasing)  # iterations where the lr drops
    gamma: float = checked(0.1, positive)
    max_iter: int = checked(9000, positive)
    clip_grad_norm: float = checked(0.0, non_negative)  # 0: no clipping
    amp: bool = False  # bf16 autocast on CPU, fp16 on CUDA
    channels_last: bool = False  # NHWC trunk and region head (GeneralizedRCNN.use_channels_last)
    checkpoint_period: int = checked(1000, positive)
    log_period: int = checked(20, positive)
    eval_period: int = checked(0, non_negative)  # 0: evaluate only at the end
    # TensorBoard pictures (detectors): ground truth and top proposals every N iterations, and the PR
    # curves after each evaluation (0: off)
    vis_period: int = checked(0, non_negative)

    def check_section(self) -> Iterator[tuple[str, str]]:
        if any(step >= self.max_iter for step in self.steps):
            below = [s for s in self.steps if s < self.max_iter]
            yield (
                "steps",
                (
                    f"every step must be below solver.max_iter={self.max_iter} (a step at or after the last "
                    f"iteration never lowers the lr); e.g. solver.steps={below or []}"
                ),
            )


@dataclass
class TestConfig:
    min_size: int = checked(600, positive)
    max_size: int = checked(1000, positive)
    ims_per_batch: int = checked(1, positive)


@dataclass
class OutputConfig:
    dir: str = "outputs/faster_rcnn"


@dataclass
class ProposalsConfig:
    """Selective search for Fast R-CNN / R-CNN (``tools/compute_proposals.py``; recorded in the cache)."""

    mode: Literal["single", "fast", "quality"] = "fast"  # Uijlings et al.; Fast R-CNN used "fast"
    max_boxes: int = checked(2000, non_negative)  # keep the best-ranked boxes (0: all)
    min_size: float = checked(0.0, non_negative)  # drop boxes narrower or shorter than this (file pixels)
    resize_to: int = checked(0, non_negative)  # search on a copy with this longer side (0: the file's size)
    workers: int = checked(0, non_negative)  # processes (0: one per core)
    seed: int = 0  # seeds the ranking's random numbers


@dataclass
class DetectionConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    proposals: ProposalsConfig = field(default_factory=ProposalsConfig)


# ------------------------------------------------------------------------------------------ classification


@dataclass
class ClsModelConfig:
    name: str = checked("resnet18", backbone_name)
    num_classes: int = checked(0, non_negative)  # 0: the number of class folders of the training split
    weights: str = ""  # initialise from a local checkpoint
    options: dict[str, Any] = field(default_factory=dict)  # extra builder options (dropout, width, ...)

    def check_section(self) -> Iterator[tuple[str, str]]:
        yield from _backbone_options(self.name, self.options)


@dataclass
class ClsDataConfig:
    root: str = "datasets/synthetic/classification"  # ImageFolder layout: root/train/<class>/*, root/val/...
    train_split: str = "train"
    val_split: str = "val"
    resize: int = checked(256, positive)  # shorter side before cropping
    crop: int = checked(224, positive)
    hflip: bool = True
    pca_lighting: float = checked(0.0, non_negative)  # AlexNet's PCA colour augmentation (0.1 in the paper)
    color_jitter: float = checked(0.0, non_negative)
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = checked([0.229, 0.224, 0.225], positive)
    num_workers: int = checked(2, non_negative)


@dataclass
class ClsSolverConfig:
    device: str = checked("auto", device_name)
    seed: int = 0
    batch_size: int = checked(256, positive)  # per process
    epochs: int = checked(90, positive)
    base_lr: float = checked(0.1, positive)
    momentum: float = checked(0.9, non_negative)
    weight_decay: float = checked(1e-4, non_negative)
    nesterov: bool = False
    lr_schedule: Literal["step", "plateau", "cosine"] = "step"  # step: multiply by gamma at `steps`
    steps: list[int] = checked([30, 60], positive, increasing)  # epochs
    gamma: float = checked(0.1, positive)
    plateau_patience: int = checked(2, non_negative)
    warmup_epochs: int = checked(0, non_negative)
    aux_loss_weight: float = checked(0.3, non_negative)  # GoogLeNet's auxiliary classifiers
    label_smoothing: float = checked(0.0, fraction)
    clip_grad_norm: float = checked(0.0, non_negative)
    amp: bool = False
    log_period: int = checked(20, positive)


@dataclass
class ClsTestConfig:
    ten_crop: bool = True  # also report 10-crop error (4 corners + centre, and their flips)
    batch_size: int = checked(64, positive)


@dataclass
class ClassificationConfig:
    model: ClsModelConfig = field(default_factory=ClsModelConfig)
    data: ClsDataConfig = field(default_factory=ClsDataConfig)
    solver: ClsSolverConfig = field(default_factory=ClsSolverConfig)
    test: ClsTestConfig = field(default_factory=ClsTestConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(dir="outputs/classifier"))
