"""The config schemas: one dataclass per section. Every field has a default; YAML files and
``section.key=value`` overrides change only what they name.

Detection (``tools/train_detector.py``, ``infer.py``, ``evaluate.py``, ``compute_proposals.py``):
``DetectionConfig(model, data, solver, test, output, proposals)``. Classification pretraining
(``tools/train_classifier.py``): ``ClassificationConfig(model, data, solver, test, output)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ----------------------------------------------------------------------------------------------- detection


@dataclass
class BackboneConfig:
    name: str = "resnet18"
    weights: str = ""  # local checkpoint: torchvision/timm state_dict or a classifier trained by rcnn
    freeze_at: int = 1  # 0: train everything; 1: freeze the stem; k: freeze the stem and k-1 stages
    frozen_bn: bool = True  # batch norm as a fixed affine transform (statistics of the checkpoint)
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments to the builder


@dataclass
class RPNConfig:
    anchor_sizes: list[float] = field(default_factory=lambda: [128.0, 256.0, 512.0])
    aspect_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_top_n_train: int = 12000
    pre_nms_top_n_test: int = 6000
    post_nms_top_n_train: int = 2000
    post_nms_top_n_test: int = 300
    nms_thresh: float = 0.7
    min_size: float = 16.0
    smooth_l1_beta: float = 0.1111111111111111


@dataclass
class RoIHeadsConfig:
    pooler: str = "roi_pool"  # "roi_pool" or "roi_align"
    pooler_resolution: int = 0  # 0: the box head's own size (7 for VGG fc6, 14 for ResNet C4 res5)
    sampling_ratio: int = 2  # roi_align only
    batch_size_per_image: int = 128
    positive_fraction: float = 0.25
    fg_iou_thresh: float = 0.5
    bg_iou_thresh_lo: float = 0.0  # Fast R-CNN used [0.1, 0.5)
    bg_iou_thresh_hi: float = 0.5
    add_gt_as_proposals: bool = True
    bbox_reg_weights: list[float] = field(default_factory=lambda: [10.0, 10.0, 5.0, 5.0])
    smooth_l1_beta: float = 1.0
    score_thresh: float = 0.05
    nms_thresh: float = 0.3
    detections_per_img: int = 100
    soft_nms: str = "none"  # "none", "linear" or "gaussian"
    soft_nms_sigma: float = 0.5
    svd_rank: int = 0  # Fast R-CNN: truncated SVD of the fc layers at test time (0: off)


@dataclass
class RCNNConfig:
    """R-CNN (Girshick et al., 2014): warped proposals, CNN features, per-class linear SVMs, ridge box
    regression. ``solver.*`` is the solver of the fine-tuning stage (the paper: SGD, lr 0.001)."""

    input_size: int = 224  # side of the warped crops (227 for AlexNet, as the paper)
    context_padding: int = 16  # pixels of context around the box at the warped size (the paper: p = 16)
    pool_size: int = 0  # grid of "pool5" (adaptive max pool of the trunk output); 0: the box head's own
    feature: str = "fc7"  # SVM features: "fc7" (the box head's output) or "pool5"
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
    batch_size: int = 128  # crops per forward pass in feature extraction and testing
    cache_dir: str = ""  # "": output.dir/features
    chunk_size: int = 4096  # proposals per feature-cache chunk (whole images: a chunk may hold more)
    cache_dtype: str = "float16"  # "float16" or "float32"


@dataclass
class ModelConfig:
    type: str = "faster_rcnn"  # "faster_rcnn", "fast_rcnn" or "rcnn"
    num_classes: int = 0  # 0: the number of categories of the training set
    weights: str = ""  # a trained detector (.pth) to start a new training from: rcnn/tasks/detector_weights.py
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi_heads: RoIHeadsConfig = field(default_factory=RoIHeadsConfig)
    rcnn: RCNNConfig = field(default_factory=RCNNConfig)  # model.type "rcnn" only
    pixel_mean: list[float] = field(default_factory=lambda: [123.675, 116.28, 103.53])  # RGB, 0..255
    pixel_std: list[float] = field(default_factory=lambda: [58.395, 57.12, 57.375])


@dataclass
class DataConfig:
    train_images: str = "datasets/synthetic/detection/train"
    train_annotations: str = "datasets/synthetic/detection/train.json"
    val_images: str = "datasets/synthetic/detection/val"
    val_annotations: str = "datasets/synthetic/detection/val.json"
    train_proposals: str = ""  # Fast R-CNN / R-CNN: proposals cache (tools/compute_proposals.py)
    val_proposals: str = ""
    min_size: list[int] = field(default_factory=lambda: [600])  # shorter side; several: multi-scale train
    max_size: int = 1000  # cap on the longer side
    hflip_prob: float = 0.5
    color_jitter: float = 0.0  # strength of brightness/contrast/saturation jitter (0: off)
    filter_empty: bool = True  # drop training images without (non-crowd) objects
    skip_invalid: bool = False  # skip bad records with a warning instead of stopping
    aspect_ratio_grouping: bool = True
    num_workers: int = 2


@dataclass
class SolverConfig:
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    seed: int = 0
    ims_per_batch: int = 2
    base_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_factor: float = 0.001
    steps: list[int] = field(default_factory=lambda: [6000, 8000])
    gamma: float = 0.1
    max_iter: int = 9000
    clip_grad_norm: float = 0.0  # 0: no clipping
    amp: bool = False  # bf16 autocast on CPU, fp16 on CUDA
    channels_last: bool = False  # NHWC trunk and region head (GeneralizedRCNN.use_channels_last)
    checkpoint_period: int = 1000
    log_period: int = 20
    eval_period: int = 0  # 0: evaluate only at the end


@dataclass
class TestConfig:
    min_size: int = 600
    max_size: int = 1000
    ims_per_batch: int = 1


@dataclass
class OutputConfig:
    dir: str = "outputs/faster_rcnn"


@dataclass
class ProposalsConfig:
    """Selective search for Fast R-CNN / R-CNN (``tools/compute_proposals.py``; recorded in the cache)."""

    mode: str = "fast"  # "single", "fast" or "quality" (Uijlings et al.; Fast R-CNN used "fast")
    max_boxes: int = 2000  # keep the best-ranked boxes (0: all)
    min_size: float = 0.0  # drop boxes narrower or shorter than this (file pixels)
    resize_to: int = 0  # search on a copy whose longer side is this many pixels (0: the file's size)
    workers: int = 0  # processes (0: one per core)
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
    name: str = "resnet18"
    num_classes: int = 0  # 0: the number of class folders of the training split
    weights: str = ""  # initialise from a local checkpoint
    options: dict[str, Any] = field(default_factory=dict)  # extra builder options (dropout, width, ...)


@dataclass
class ClsDataConfig:
    root: str = "datasets/synthetic/classification"  # ImageFolder layout: root/train/<class>/*, root/val/...
    train_split: str = "train"
    val_split: str = "val"
    resize: int = 256  # shorter side before cropping
    crop: int = 224
    hflip: bool = True
    pca_lighting: float = 0.0  # AlexNet's PCA colour augmentation strength (0.1 in the paper)
    color_jitter: float = 0.0
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    num_workers: int = 2


@dataclass
class ClsSolverConfig:
    device: str = "auto"
    seed: int = 0
    batch_size: int = 256
    epochs: int = 90
    base_lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    lr_schedule: str = "step"  # "step" (divide by 1/gamma at `steps`), "plateau" or "cosine"
    steps: list[int] = field(default_factory=lambda: [30, 60])  # epochs
    gamma: float = 0.1
    plateau_patience: int = 2
    warmup_epochs: int = 0
    aux_loss_weight: float = 0.3  # GoogLeNet's auxiliary classifiers
    label_smoothing: float = 0.0
    clip_grad_norm: float = 0.0
    amp: bool = False
    log_period: int = 20


@dataclass
class ClsTestConfig:
    ten_crop: bool = True  # also report 10-crop error (4 corners + centre, and their flips)
    batch_size: int = 64


@dataclass
class ClassificationConfig:
    model: ClsModelConfig = field(default_factory=ClsModelConfig)
    data: ClsDataConfig = field(default_factory=ClsDataConfig)
    solver: ClsSolverConfig = field(default_factory=ClsSolverConfig)
    test: ClsTestConfig = field(default_factory=ClsTestConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(dir="outputs/classifier"))
