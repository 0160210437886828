"""The lineage's experiments, one module per experiment (``run(output_dir, quick=...) -> Section``), run by
``tools/experiments.py``: degradation, lenet5, filters, multicrop, complexity."""
