"""Pascal VOC (XML annotation folders) to the COCO json structure used by ``CocoDetection``.

Reads ``VOC_ROOT/ImageSets/Main/<image_set>.txt``, ``VOC_ROOT/Annotations/<id>.xml`` and writes image
records whose ``file_name`` is relative to ``VOC_ROOT/JPEGImages`` (the XML ``<filename>``, else
``<id>.jpg``). Image ids are ``1..N`` in the order of the split file (the VOC name is kept as ``voc_id``);
category ids are ``1..K`` in the order of ``class_names``.

Coordinates: VOC boxes are 1-based inclusive pixel indices, so ``x = xmin - 1``, ``w = xmax - xmin + 1``
(and the same for y); the result is clipped to the image.

``difficult`` objects: kept with ``"iscrowd": 1`` (and ``"difficult": 1``) by default, so that training
ignores them (``CocoDetection`` drops crowd boxes) and COCO evaluation neither rewards nor penalises
detections on them, which is VOC's rule. ``difficult="drop"`` leaves them out, ``"keep"`` keeps them as
ordinary objects.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from rcnn.data.errors import DatasetError
from rcnn.data.image import read_image

__all__ = ["VOC_CLASSES", "voc_to_coco"]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def _text(node: ET.Element, path: str, file: str, image_id: object) -> str:
    child = node.find(path)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"missing <{path}>", file=file, image_id=image_id)
    return child.text.strip()


def _number(node: ET.Element, path: str, file: str, image_id: object) -> float:
    text = _text(node, path, file, image_id)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"<{path}> is not a number: {text!r}", file=file, image_id=image_id) from None


def _image_size(path: str, image_id: object) -> tuple[int, int]:
    h, w = read_image(path, image_id).shape[:2]
    return h, w


def voc_to_coco(
    voc_root: str | os.PathLike,
    image_set: str = "trainval",
    class_names: Sequence[str] = VOC_CLASSES,
    *,
    difficult: str = "crowd",
) -> dict[str, Any]:
    """Convert the VOC split ``image_set`` under ``voc_root`` to a COCO dict (see the module docstring).

    ``difficult``: ``"crowd"`` (default), ``"drop"`` or ``"keep"``. Raises ``DatasetError`` naming the file
    and image for a missing/unparsable XML, an unknown class name or a bad box.
    """
    if difficult not in ("crowd", "drop", "keep"):
        raise ValueError(f"difficult must be 'crowd', 'drop' or 'keep', got {difficult!r}")
    root = str(voc_root)
    split_file = os.path.join(root, "ImageSets", "Main", f"{image_set}.txt")
    if not os.path.exists(split_file):
        raise DatasetError("image set file not found", file=split_file)
    with open(split_file) as f:
        names = [line.split()[0] for line in f if line.strip()]
    class_to_id = {name: k + 1 for k, name in enumerate(class_names)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, name in enumerate(names, start=1):
        xml_file = os.path.join(root, "Annotations", f"{name}.xml")
        if not os.path.exists(xml_file):
            raise DatasetError("annotation file not found", file=xml_file, image_id=name)
        try:
            tree = ET.parse(xml_file).getroot()
        except ET.ParseError as exc:
            raise DatasetError(f"not a valid XML file: {exc}", file=xml_file, image_id=name) from None
        file_name = (tree.findtext("filename") or "").strip() or f"{name}.jpg"
        size = tree.find("size")
        if size is not None and size.findtext("width") and size.findtext("height"):
            width = int(_number(size, "width", xml_file, name))
            height = int(_number(size, "height", xml_file, name))
        else:
            height, width = _image_size(os.path.join(root, "JPEGImages", file_name), name)
        if width <= 0 or height <= 0:
            raise DatasetError(f"image size {width}x{height} is not positive", file=xml_file, image_id=name)
        images.append(
            {"id": image_id, "file_name": file_name, "height": height, "width": width, "voc_id": name}
        )
        for obj in tree.findall("object"):
            cls = _text(obj, "name", xml_file, name)
            if cls not in class_to_id:
                raise DatasetError(f"unknown class {cls!r} (known: {', '.join(class_names)})",
                                   file=xml_file, image_id=name)  # fmt: skip
            is_difficult = (obj.findtext("difficult") or "0").strip() == "1"
            if is_difficult and difficult == "drop":
                continue
            box = obj.find("bndbox")
            if box is None:
                raise DatasetError(f"object {cls!r} has no <bndbox>", file=xml_file, image_id=name)
            x1, y1, x2, y2 = (_number(box, k, xml_file, name) for k in ("xmin", "ymin", "xmax", "ymax"))
            x, y = max(0.0, x1 - 1), max(0.0, y1 - 1)
            w, h = min(float(width), x2) - x, min(float(height), y2) - y
            if w <= 0 or h <= 0:
                raise DatasetError(f"object {cls!r} has an empty box {[x1, y1, x2, y2]}", file=xml_file,
                                   image_id=name)  # fmt: skip
            crowd = int(is_difficult and difficult == "crowd")
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": class_to_id[cls],
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": crowd,
                "difficult": int(is_difficult),
            })  # fmt: skip
    return {
        "info": {
            "description": f"Pascal VOC {image_set} converted from {os.path.basename(root.rstrip(os.sep))}"
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": n, "supercategory": "voc"} for k, n in enumerate(class_names)],
    }
