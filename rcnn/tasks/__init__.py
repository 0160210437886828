"""The top floor of the library: what the tools run, built from a config.

- :mod:`.cli`: the tools' shared prologue (config + overrides, logging, ``config.yaml``, seeding, distributed,
  exceptions -> exit codes); :mod:`.tool_args`: ``--device``, ``--resume`` / ``--overwrite``;
- :mod:`.run_dir`: ``check_output_dir``, training never silently over a previous run;
- :mod:`.detection`: detection datasets, loaders, inference, evaluation, ``save_detector`` /
  ``load_detector``;
- :mod:`.detector_weights`: ``load_detector_weights``, fine-tuning from a trained detector
  (``model.weights``);
- :mod:`.rcnn2014`: ``train_rcnn``, R-CNN's stages in order;
- :mod:`.rpn_proposals`: a trained RPN's proposals in the proposal cache;
- :mod:`.tensorboard_pictures`: ``TensorBoardPictures``, ground truth, proposals and PR curves in TensorBoard;
- :mod:`.classification`: classifier datasets, loaders, the epoch stream and ``ClassifierLoss``;
- :mod:`.classifier_run`: ``ClassifierRun``, a classifier training run from a ``ClassificationConfig``.

No re-exports: each tool imports the submodules it runs (``from rcnn.tasks.detection import load_detector``),
so that a tool which needs one task does not load them all (pycocotools, albumentations, the trainer).
"""
