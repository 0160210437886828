"""Image files: ``read_image(path) -> (H, W, 3) uint8`` RGB, errors naming the file.

Kept apart from :mod:`rcnn.data.coco` so that the readers that only decode files (VOC conversion, the
selective search workers of :mod:`rcnn.proposals.compute`) do not import pycocotools and albumentations.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from rcnn.data.errors import DatasetError

__all__ = ["read_image"]


def read_image(path: str, image_id: object = None) -> np.ndarray:
    """Decode an image file into ``(H, W, 3) uint8`` RGB; ``DatasetError`` naming the file when it is
    missing or cannot be decoded. EXIF orientation is ignored (annotations refer to the stored pixels)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError("image file not found", file=path, image_id=image_id) from None
    except OSError as exc:
        raise DatasetError(f"cannot read image file: {exc}", file=path, image_id=image_id) from None
    image = None
    if data.size:
        with contextlib.suppress(cv2.error):
            image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise DatasetError("cannot decode image (corrupt or not an image)", file=path, image_id=image_id)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
