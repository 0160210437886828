"""ImageFolder classification data (ImageNet layout) and the classification transforms.

Layout: ``split_dir/<class>/<image>``; classes are the sub-folder names, sorted, and their position is the
class index. Images are decoded to ``(3, H, W) uint8`` RGB tensors and passed to ``transform``.

Transforms (torchvision v2 on uint8 tensors), output ``(3, crop, crop) float32`` normalised with
``mean``/``std`` (given for ``0..1`` pixel values):

- train: resize the shorter side to ``resize``, random ``crop`` x ``crop`` (AlexNet style), horizontal
  flip, optional colour jitter and AlexNet's PCA lighting noise (ImageNet eigenvalues/eigenvectors);
- eval: resize + centre crop;
- ``ten_crop_transform``: resize, then the 4 corner + centre crops and their flips: ``(10, 3, crop, crop)``.

The random transforms draw from torch's generator. ``ds[SampleKey(i, seed)]`` (what the training samplers
yield) runs them with that generator seeded from ``seed`` and restores it afterwards
(:func:`~rcnn.data.sample_keys.torch_seeded`): a sample's crop, flip, jitter and PCA noise depend on the
key alone, in the main process or a worker, and a resumed run repeats them. ``ds[i]`` draws as usual.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from rcnn.data.check import check_image_files, raise_problems
from rcnn.data.errors import DatasetError
from rcnn.data.image import read_image
from rcnn.data.sample_keys import SampleKey, split_key, torch_seeded

__all__ = ["ImageFolderDataset", "build_classification_transforms", "ten_crop_transform", "PCALighting"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA of ImageNet RGB pixels (0..1 scale): eigenvalues and eigenvectors (columns)
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class ImageFolderDataset(Dataset):
    """``ds[i] -> (transform(image), class_index)``; ``image`` is a ``(3, H, W) uint8`` RGB tensor.
    ``ds[SampleKey(i, seed)]``: the same with the transform's draws seeded from ``seed``.

    Attributes: ``classes`` (sorted folder names), ``class_to_idx``, ``samples`` (list of (path, index)),
    ``targets``. A corrupt image raises ``DatasetError`` naming the file.
    """

    def __init__(
        self, split_dir: str | os.PathLike, transform: Callable[[Tensor], Any] | None = None
    ) -> None:
        self.root = str(split_dir)
        if not os.path.isdir(self.root):
            raise DatasetError("image folder not found", file=self.root)
        self.classes = sorted(
            e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")
        )
        if not self.classes:
            raise DatasetError("no class sub-folders (expected split_dir/<class>/<image>)", file=self.root)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = []
        for name in self.classes:
            folder = os.path.join(self.root, name)
            for dirpath, dirnames, files in os.walk(folder, followlinks=True):
                dirnames.sort()
                for file in sorted(files):
                    if file.lower().endswith(IMG_EXTENSIONS):
                        self.samples.append((os.path.join(dirpath, file), self.class_to_idx[name]))
        if not self.samples:
            raise DatasetError(f"no images with extensions {', '.join(IMG_EXTENSIONS)}", file=self.root)
        self.targets = [t for _, t in self.samples]
        self.transform = transform

    def check_images(self) -> None:
        """Check every image file before use (its header reads as an image; no decoding); one
        :class:`DatasetError` lists the problems."""
        problems = check_image_files((path, None, None) for path, _ in self.samples)
        raise_problems(problems, self.root, hint="remove or replace them")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | SampleKey) -> tuple[Any, int]:
        index, seed = split_key(key)
        path, target = self.samples[index]
        image = torch.from_numpy(read_image(path)).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            with torch_seeded(seed):
                image = self.transform(image)
        return image, target


class PCALighting(torch.nn.Module):
    """AlexNet's colour augmentation: add ``eigvec @ (alpha * eigval)`` to every pixel, ``alpha ~ N(0, std)``
    per image. Input ``(..., 3, H, W)`` float in ``0..1`` (before normalisation)."""

    def __init__(self, std: float, eigval: Sequence[float] = IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC) -> None:
        super().__init__()
        self.std = float(std)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32), persistent=False)
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        if self.std <= 0:
            return image
        alpha = torch.randn(3) * self.std
        shift = self.eigvec @ (alpha * self.eigval)  # (3,)
        return image + shift.to(image.dtype).view(3, 1, 1)


class _StackCrops(torch.nn.Module):
    """Tuple of crops -> one normalised ``(N, 3, h, w)`` float tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        )

    def forward(self, crops: Sequence[Tensor]) -> Tensor:
        return torch.stack([self.normalize(c) for c in crops])


def build_classification_transforms(
    train: bool,
    resize: int = 256,
    crop: int = 224,
    hflip: bool = True,
    pca_lighting: float = 0.0,
    color_jitter: float = 0.0,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """uint8 ``(3, H, W)`` -> normalised ``(3, crop, crop) float32``. See the module docstring."""
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
    ops: list[Any] = [v2.Resize(resize, antialias=True)]
    if train:
        ops.append(v2.RandomCrop(crop))
        if hflip:
            ops.append(v2.RandomHorizontalFlip())
        if color_jitter > 0:
            s = float(color_jitter)
            ops.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s))
    else:
        ops.append(v2.CenterCrop(crop))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if train and pca_lighting > 0:
        ops.append(PCALighting(pca_lighting))
    ops.append(v2.Normalize(list(mean), list(std)))
    return v2.Compose(ops)


def ten_crop_transform(
    resize: int = 256,
    crop: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """uint8 ``(3, H, W)`` -> ``(10, 3, crop, crop) float32``: 4 corners + centre, then their flips."""
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
    return v2.Compose([v2.Resize(resize, antialias=True), v2.TenCrop(crop), _StackCrops(mean, std)])
