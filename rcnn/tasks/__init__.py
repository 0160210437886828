"""The top floor of the library: what the tools run, built from a config.

- :mod:`rcnn.tasks.detection`: detection datasets, loaders, inference, evaluation, detector checkpoints;
- :mod:`rcnn.tasks.classification`: classifier datasets, loaders and the loss adapter for the trainer;
- :mod:`rcnn.tasks.cli`: the tools' shared prologue (config, logging, seeding, exceptions -> exit codes).
"""
