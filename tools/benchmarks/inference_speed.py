"""Test-time speed of trained detectors, against selective search (the generations section's test columns).

Every val image (batch 1, the test transform, already decoded) goes through each trained detector
(:func:`rcnn.tasks.detection.load_detector` on the run's saved ``config.yaml``, called as
:func:`rcnn.tasks.detection.run_inference` calls it), and selective search runs on the image file
(:func:`rcnn.proposals.compute.search_image`, what the proposal workers run, with one OpenCV thread), after
a warm-up, the runs alternating image by image (order flipped every image).
"""

from __future__ import annotations

import os
import time

import cv2
import torch

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import CocoDetection
from rcnn.proposals.compute import search_image, search_params
from rcnn.tasks.detection import build_detection_dataset, load_detector
from tools.benchmarks.timing import sync

WARMUP_IMAGES = 2  # val images each run sees before the timed passes


def measure_test_time(runs: dict[str, str], proposals: DetectionConfig, device: str, reps: int) -> dict:
    """Seconds per val image of each trained detector (``runs``: name -> output folder of its training) and
    of selective search on the image files (``proposals``: the config the proposals were computed with,
    its ``proposals`` and ``data.val_*``); returns ``{name: [seconds per image, ...]}`` with the search
    under ``"selective search"``, the lists aligned image by image (``reps`` passes over the split)."""
    dev = torch.device(device)
    detectors, inputs, ids = {}, {}, {}
    for name, out in runs.items():
        cfg = load_config(os.path.join(out, "config.yaml"), DetectionConfig)
        model, _ = load_detector(cfg, os.path.join(out, "model_final.pth"), dev)
        dataset = build_detection_dataset(cfg, "val")
        samples = [dataset[i] for i in range(len(dataset))]
        ids[name] = list(dataset.ids)
        # as run_inference calls a detector: proposals from the dataset when it has no generator of its own
        needs_proposals = getattr(model, "proposal_generator", None) is None
        inputs[name] = [
            ([image.to(dev)], {"proposals": [target["proposals"].to(dev)]} if needs_proposals else {})
            for image, target in samples
        ]
        detectors[name] = model
    params = search_params(proposals.proposals)
    files = CocoDetection(proposals.data.val_images, proposals.data.val_annotations, filter_empty=False)
    jobs = []
    for i, image_id in enumerate(files.ids):
        info = files.image_info(i)
        jobs.append((files.image_path(i), image_id, (info["height"], info["width"]), params))
    if any(image_ids != list(files.ids) for image_ids in ids.values()):
        raise RuntimeError("the detectors' val splits differ from the proposals' val split")

    def call(name: str, index: int) -> float:
        if name == "selective search":
            return search_image(*jobs[index])[2]
        images, kwargs = inputs[name][index]
        sync(device)
        start = time.perf_counter()
        detectors[name](images, **kwargs)
        sync(device)
        return time.perf_counter() - start

    names = ["selective search", *runs]
    times: dict[str, list[float]] = {n: [] for n in names}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as the proposal workers run it
    try:
        with torch.inference_mode():
            for index in range(min(WARMUP_IMAGES, len(jobs))):
                for name in names:
                    call(name, index)
            step = 0
            for _ in range(reps):
                for index in range(len(jobs)):
                    for name in names if step % 2 == 0 else names[::-1]:
                        times[name].append(call(name, index))
                    step += 1
    finally:
        cv2.setNumThreads(threads)
    return times
