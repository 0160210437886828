"""The sections of ``tools/benchmark.py`` (one module each, ``run_section(...) -> markdown``) and what they
share; from the repository root each also runs alone, e.g. ``python -m tools.benchmarks.ops --quick``."""
