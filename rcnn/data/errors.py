"""Bad dataset input: the error type (``DatasetError``) and the validation of COCO annotation files.

Every message names the file and, where there is one, the image id and the annotation id.
"""

from __future__ import annotations

import json
import logging
import math
import os

logger = logging.getLogger(__name__)

SKIP_RECORDS_HINT = "set data.skip_invalid=true to skip invalid records"


class DatasetError(ValueError):
    """A problem with the user's data. The message names the file and, where there is one, the
    image id and the annotation id; the same values are kept as attributes."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        image_id: object = None,
        annotation_id: object = None,
    ) -> None:
        parts = []
        if file is not None:
            parts.append(str(file))
        if image_id is not None:
            parts.append(f"image id={image_id}")
        if annotation_id is not None:
            parts.append(f"annotation id={annotation_id}")
        prefix = ": ".join([", ".join(parts)]) + ": " if parts else ""
        super().__init__(prefix + message)
        self.file = None if file is None else str(file)
        self.image_id = image_id
        self.annotation_id = annotation_id


# ------------------------------------------------------------------------------------- COCO json checks


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_json(path: str) -> object:
    if not os.path.exists(path):
        raise DatasetError("annotation file not found", file=path)
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"not a JSON file (line {exc.lineno}, column {exc.colno}: {exc.msg})", file=path
        ) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DatasetError(f"cannot read the annotation file: {exc}", file=path) from None


def _check_category(cat: object) -> str | None:
    if not isinstance(cat, dict):
        return f"category is not an object: {cat!r:.80}"
    if not _is_int(cat.get("id")):
        return f"category has no integer 'id': {cat!r:.80}"
    if "name" not in cat:
        return f"category id={cat['id']} has no 'name'"
    return None


def _check_image(img: object) -> str | None:
    if not isinstance(img, dict):
        return f"image record is not an object: {img!r:.80}"
    if not _is_int(img.get("id")):
        return f"image record has no integer 'id': {img!r:.80}"
    if not isinstance(img.get("file_name"), str) or not img["file_name"]:
        return "image record has no 'file_name'"
    for key in ("height", "width"):
        if not _is_int(img.get(key)) or img[key] <= 0:
            return f"image record has no positive integer '{key}' (got {img.get(key)!r})"
    return None


_NUMBER_TYPES = frozenset({int, float})  # JSON numbers; bool excluded on purpose


def _check_annotation(ann: dict, images: dict[int, dict], categories: set[int]) -> str | None:
    """The problem with one annotation record, or None (written for speed: it runs on every record)."""
    image_id = ann.get("image_id")
    if type(image_id) is not int:
        return "annotation has no integer 'image_id'"
    img = images.get(image_id)
    if img is None:
        return "annotation refers to an unknown image id"
    if ann.get("category_id") not in categories:
        return f"annotation refers to an unknown category id {ann.get('category_id')!r}"
    bbox = ann.get("bbox")
    if (
        type(bbox) not in (list, tuple)
        or len(bbox) != 4
        or type(bbox[0]) not in _NUMBER_TYPES
        or type(bbox[1]) not in _NUMBER_TYPES
        or type(bbox[2]) not in _NUMBER_TYPES
        or type(bbox[3]) not in _NUMBER_TYPES
    ):
        return f"'bbox' must be [x, y, width, height] numbers, got {bbox!r:.80}"
    x, y, w, h = bbox
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h)):
        return f"box has NaN or infinite coordinates: bbox={list(bbox)}"
    if w <= 0 or h <= 0:
        return f"box has non-positive width or height: bbox={list(bbox)} (x, y, w, h)"
    W, H = img["width"], img["height"]
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > W + tol or y + h > H + tol:
        return f"box is outside the {W}x{H} (WxH) image: bbox={list(bbox)} (x, y, w, h)"
    crowd = ann.get("iscrowd", 0)
    if crowd != 0 and crowd != 1:
        return f"'iscrowd' must be 0 or 1, got {crowd!r}"
    area = ann.get("area", 0.0)
    if type(area) not in _NUMBER_TYPES or not math.isfinite(area) or area < 0:
        return f"'area' must be a non-negative number, got {area!r}"
    return None


BOX_TOLERANCE = 1.0  # pixels a box may stick out of the image (rounding); it is clipped


def load_coco_json(path: str | os.PathLike, *, skip_invalid: bool = False) -> dict:
    """Read and validate a COCO detection json; return a cleaned copy for pycocotools.

    Checks: JSON, top-level ``images``/``annotations``/``categories`` lists, unique integer ids, image
    records with ``file_name`` and positive ``height``/``width``, annotations pointing at known images and
    categories with finite ``bbox = [x, y, w, h]``, ``w, h > 0``, inside the image (``BOX_TOLERANCE`` px).
    Missing ``iscrowd``/``area`` get ``0``/``w * h`` (COCOeval needs them); ``info`` and ``licenses``
    are added when missing. Structural problems always raise ``DatasetError``; bad image, annotation and
    category records raise too unless ``skip_invalid``, which drops them with one warning each and a count.
    """
    path = str(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"not a COCO annotation file: top level is a {type(data).__name__}", file=path)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            hint = " (use [] for an unlabelled set)" if key == "annotations" else ""
            raise DatasetError(f"not a COCO annotation file: missing key '{key}'{hint}", file=path)
        if not isinstance(data[key], list):
            raise DatasetError(f"'{key}' must be a list, got {type(data[key]).__name__}", file=path)

    skipped = {"categories": 0, "images": 0, "annotations": 0}

    def bad(kind: str, message: str, **ids: object) -> None:
        error = DatasetError(message, file=path, **ids)
        if not skip_invalid:
            raise DatasetError(f"{message} ({SKIP_RECORDS_HINT})", file=path, **ids)
        skipped[kind] += 1
        logger.warning("skipping invalid record: %s", error)

    categories: dict[int, dict] = {}
    for cat in data["categories"]:
        problem = _check_category(cat)
        if problem is None and cat["id"] in categories:
            problem = f"duplicate category id {cat['id']}"
        if problem is not None:
            bad("categories", problem)
            continue
        categories[cat["id"]] = cat
    if not categories:
        raise DatasetError("the annotation file has no valid category", file=path)

    images: dict[int, dict] = {}
    for img in data["images"]:
        problem = _check_image(img)
        image_id = img.get("id") if isinstance(img, dict) else None
        if problem is None and image_id in images:
            problem = "duplicate image id"
        if problem is not None:
            bad("images", problem, image_id=image_id)
            continue
        images[image_id] = img

    annotations: list[dict] = []
    ann_ids: set[object] = set()
    category_ids = set(categories)
    for ann in data["annotations"]:
        if not isinstance(ann, dict):
            bad("annotations", f"annotation is not an object: {ann!r:.80}")
            continue
        ann_id = ann.get("id")
        if type(ann_id) is not int:
            problem = "annotation has no integer 'id'"
        elif ann_id in ann_ids:
            problem = "duplicate annotation id"
        else:
            problem = _check_annotation(ann, images, category_ids)
        if problem is not None:
            bad("annotations", problem, image_id=ann.get("image_id"), annotation_id=ann_id)
            continue
        ann_ids.add(ann_id)
        if "iscrowd" not in ann:  # the dict is our own parse of the file: safe to fill in
            ann["iscrowd"] = 0
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        annotations.append(ann)

    if any(skipped.values()):
        logger.warning(
            "skipped %d invalid annotations, %d invalid images and %d invalid categories in %s",
            skipped["annotations"],
            skipped["images"],
            skipped["categories"],
            path,
        )
    cleaned = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
    cleaned.setdefault("info", {})
    cleaned.setdefault("licenses", [])
    cleaned["images"] = list(images.values())
    cleaned["annotations"] = annotations
    cleaned["categories"] = list(categories.values())
    return cleaned
