"""Benchmarks of rcnn components (run as modules, e.g. ``python -m tools.benchmarks.selective_search``)."""
