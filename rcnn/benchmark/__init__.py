"""Benchmarks of rcnn components (run as modules, e.g. ``python -m rcnn.benchmark.selective_search``)."""
