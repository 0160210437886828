"""The detector benchmark's peak memory (tools.benchmarks.peak_memory): the working memory of the runs, not
the high-water mark that building the model left behind (which made every figure 0 MB). Measured as the
benchmark does it, in a fresh process (in this one, memory that earlier tests freed would be reused without
growing the RSS)."""

from dataclasses import asdict

from tools.benchmarks.detector_models import QUICK_CASES
from tools.benchmarks.peak_memory import peak_memory_mb


def test_peak_memory_counts_the_runs_working_memory():
    spec = {"case": asdict(QUICK_CASES[0]), "model": "ours", "mode": "infer", "batch": 2, "device": "cpu",
            "threads": 1, "runs": 1}  # fmt: skip
    assert peak_memory_mb(spec, "cpu") > 1.0  # MB: two 128x128 images through the trunk and 200 RoIs
