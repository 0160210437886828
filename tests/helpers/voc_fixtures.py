"""Small generated Pascal VOC devkit folders (``Annotations/``, ``ImageSets/Main/``, ``JPEGImages/``) for
the VOC tests, written in a temporary folder.

``voc_xml`` writes one annotation file's text, ``write_voc`` a whole folder from given images and objects,
``make_voc_scenes`` a folder of synthetic scenes (shapes over crops of scikit-image photos, the built-in
data's renderer) labelled with VOC class names, some objects ``difficult``, one image without objects.
VOC boxes are 1-based inclusive pixel indices: an object covering the pixels ``x..x+w-1`` has
``xmin = x + 1``, ``xmax = x + w``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rcnn.data.synthetic_render import render_scene

# an object: (class name, difficult 0/1, (xmin, ymin, xmax, ymax) 1-based inclusive)
VOCObject = tuple[str, int, tuple[int, int, int, int]]

# the VOC class each of the synthetic renderer's 9 shape categories is named after in make_voc_scenes
SCENE_CLASSES = ("person", "car", "dog", "cat", "bird", "boat", "bottle", "chair", "tvmonitor")


def voc_xml(filename: str, size: tuple[int, int] | None, objects: Sequence[VOCObject]) -> str:
    """The XML of one image: ``size`` (height, width), or None to leave ``<size>`` out."""
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    size_xml = ""
    if size is not None:
        size_xml = f"<size><width>{size[1]}</width><height>{size[0]}</height><depth>3</depth></size>"
    return f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>{size_xml}{objs}</annotation>"


def write_voc(
    root: Path,
    images: Mapping[str, tuple[np.ndarray, Sequence[VOCObject]]],
    splits: Mapping[str, Sequence[str]],
    *,
    ext: str = ".jpg",
    without_size: Sequence[str] = (),
) -> Path:
    """Write ``root/JPEGImages/<name><ext>`` (RGB uint8 images), ``root/Annotations/<name>.xml`` and
    ``root/ImageSets/Main/<split>.txt``; the names in ``without_size`` get no ``<size>``. Returns root."""
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, (rgb, objects) in images.items():
        file_name = name + ext
        assert cv2.imwrite(str(root / "JPEGImages" / file_name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        size = None if name in without_size else rgb.shape[:2]
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(file_name, size, objects))
    for split, names in splits.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


@dataclass
class VOCScenes:
    """What ``make_voc_scenes`` wrote: the folder, its splits and every image's objects."""

    root: Path
    splits: dict[str, list[str]]
    sizes: dict[str, tuple[int, int]]  # name -> (height, width)
    objects: dict[str, list[VOCObject]] = field(default_factory=dict)


def make_voc_scenes(
    root: Path,
    num_train: int = 6,
    num_val: int = 4,
    sizes: Sequence[tuple[int, int]] = ((96, 128), (128, 96)),
    seed: int = 0,
) -> VOCScenes:
    """A VOC folder of synthetic scenes: ``train`` images ``000001..``, then the ``val`` ones; image sizes
    cycle through ``sizes`` (height, width). Every image has 2-3 objects named by ``SCENE_CLASSES``, every
    third object is ``difficult``, and the last val image has no objects."""
    images: dict[str, tuple[np.ndarray, list[VOCObject]]] = {}
    names = [f"{k:06d}" for k in range(1, num_train + num_val + 1)]
    count = 0
    for k, name in enumerate(names):
        height, width = sizes[k % len(sizes)]
        rng = np.random.default_rng([seed, k])
        num_objects = 0 if k == len(names) - 1 else int(rng.integers(2, 4))
        rgb, placed = render_scene(rng, height, width, num_objects, 0.3, 0.7)
        objects = []
        for p in placed:
            x, y, w, h = p.box
            objects.append((SCENE_CLASSES[p.category], int(count % 3 == 2), (x + 1, y + 1, x + w, y + h)))
            count += 1
        images[name] = (rgb, objects)
    splits = {"train": names[:num_train], "val": names[num_train:], "trainval": names}
    write_voc(root, images, splits)
    return VOCScenes(
        root,
        splits,
        {n: images[n][0].shape[:2] for n in names},
        {n: images[n][1] for n in names},
    )
