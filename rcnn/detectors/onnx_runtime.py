"""Running an exported detector (:mod:`rcnn.detectors.export`) in ONNX Runtime, with the eager model's
call: ``detector(images)`` -> one ``{"boxes", "labels", "scores"}`` per image.

Shape shorthand:
    N: images; H, W: image size; P_i: proposals of image i; D_i: detections of image i.

``onnxruntime`` is an optional dependency (``pip install -e .[export]``); importing this module needs it.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import torch
from torch import Tensor

from rcnn.structures import Detections, check_image


class OnnxDetector:
    """An ONNX Runtime session on ``path``; ``metadata``: the strings stored at export (JSON values).

    ``device``: "cpu" (CPUExecutionProvider) or "cuda[:i]" (CUDAExecutionProvider when this onnxruntime
    has it). ``threads``: intra-op threads of the session (0: onnxruntime's default).
    """

    def __init__(self, path: str, *, device: str = "cpu", threads: int = 0):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        self.session = onnxruntime.InferenceSession(path, options, providers=providers)
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {key: json.loads(value) for key, value in props.items()}
        self.needs_proposals = len(self.session.get_inputs()) == 2

    def __call__(self, images: list[Tensor], *, proposals: list[Tensor] | None = None) -> list[Detections]:
        """images: N tensors (3, H, W) RGB 0..255, one size (batched in one run; one run per image
        otherwise); proposals (Fast R-CNN): N tensors (P_i, 4). Returns N detections, as the eager model."""
        for i, image in enumerate(images):
            check_image(image, f"images[{i}]")
        if self.needs_proposals and (proposals is None or len(proposals) != len(images)):
            raise ValueError("this detector (Fast R-CNN) needs proposals: one (P_i, 4) tensor per image")
        if len({tuple(img.shape) for img in images}) > 1:
            return [
                self([img], proposals=None if proposals is None else [proposals[i]])[0]
                for i, img in enumerate(images)
            ]
        feed = {"images": torch.stack(images).float().cpu().numpy()}
        if self.needs_proposals:
            rois = [torch.cat([torch.full((len(p), 1), float(i)), p.float().cpu()], 1) for i, p in
                    enumerate(proposals)]  # fmt: skip
            feed["proposals"] = torch.cat(rois).numpy().astype(np.float32)
        boxes, labels, scores, image = (torch.from_numpy(o) for o in self.session.run(None, feed))
        results: list[Detections] = []
        for i in range(len(images)):
            mine = image == i
            results.append({"boxes": boxes[mine], "labels": labels[mine], "scores": scores[mine]})
        return results
