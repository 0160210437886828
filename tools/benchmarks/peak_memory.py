"""Peak memory of one detector benchmark run: the working memory of the forward (and backward) passes, not
the weights.

On the CPU each model and case runs in a fresh process (``python -m tools.benchmarks.peak_memory SPEC``)
after one untimed call: the peak resident set during the runs (``VmHWM``, reset just before them) minus the
resident set before them. In one process, memory that earlier work freed would be reused without growing
the resident set. On CUDA it is ``torch.cuda.max_memory_allocated`` over the runs, in this process.

``spec``: ``{"case": asdict(Case), "model": one of MODELS, "mode": "infer" | "train", "batch": int,
"device": str, "threads": int, "runs": int}``, and optionally ``"models"``: the module that builds the
case's models (default ``tools.benchmarks.detector_models``; ``tools.benchmarks.fpn_models`` for the fpn
section). Such a module has ``case_from_dict``, ``build_models``, ``make_inputs``, ``make_inference``,
``make_step`` and ``training_amp_dtype``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import torch

DEFAULT_MODELS = "tools.benchmarks.detector_models"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def peak_memory_mb(spec: dict, device: str) -> float:
    """Peak memory (MB) that running ``spec`` adds: a fresh process on the CPU, the allocator's peak on
    CUDA."""
    if device.startswith("cuda"):
        return _measure_peak(spec)
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    out = subprocess.run(
        [sys.executable, "-m", "tools.benchmarks.peak_memory", json.dumps(spec)],
        cwd=ROOT,  # the checkout's packages, wherever the benchmark was started from
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"peak memory process for {spec['model']} failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _measure_peak(spec: dict) -> float:
    """Build one model of ``spec``, run it ``spec["runs"]`` times, return the added peak in MB."""
    device = spec["device"]
    # the section's own models module, named in the spec (the child process imports it by name)
    models = importlib.import_module(spec.get("models", DEFAULT_MODELS))
    case = models.case_from_dict(spec["case"])
    training = spec["mode"] == "train"
    torch.set_num_threads(spec["threads"])
    which = (spec["model"],)
    model = models.build_models(case, training=training, device=device, which=which)[spec["model"]]
    images, targets = models.make_inputs(case, spec["batch"], device)
    if training:
        run = models.make_step(model, images, targets, models.training_amp_dtype(spec["model"], device))
    else:
        run = models.make_inference(model, images)
    run()  # one call first: one-time set-up (kernel compilation and loading, oneDNN caches) is not counted
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(spec["runs"]):
            run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    if not _reset_peak_rss():  # ru_maxrss alone would report the peak of building the model
        raise RuntimeError("peak memory on the CPU needs Linux's /proc/self/clear_refs")
    before = _status_mb("VmRSS")
    for _ in range(spec["runs"]):
        run()
    return _status_mb("VmHWM") - before


def main(argv: list[str] | None = None) -> None:
    """``python -m tools.benchmarks.peak_memory SPEC``: the child process of :func:`peak_memory_mb`; prints
    ``{"peak_mb": ...}`` of the JSON ``SPEC``."""
    (spec,) = sys.argv[1:] if argv is None else argv
    print(json.dumps({"peak_mb": _measure_peak(json.loads(spec))}))


if __name__ == "__main__":
    main()
