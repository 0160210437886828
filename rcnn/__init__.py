"""rcnn: region-based object detection (R-CNN, Fast R-CNN, Faster R-CNN) on ILSVRC-era backbones.

Subpackages, by floor (a module imports only from its own floor or below; see docs/architecture.md):

- :mod:`rcnn.utils`: distributed helpers, atomic writes, seeding;
- :mod:`rcnn.structures`, :mod:`rcnn.config`, :mod:`rcnn.config_schema`, :mod:`rcnn.ops`,
  :mod:`rcnn.modeling`, :mod:`rcnn.data`, :mod:`rcnn.proposals`, :mod:`rcnn.evaluation` (with the
  top-level :mod:`backbones`);
- :mod:`rcnn.detectors`: Fast / Faster R-CNN and R-CNN (2014), built from a config;
- :mod:`rcnn.engine`: the training loop and its checkpoints, schedules and logging;
- :mod:`rcnn.tasks`: what the tools run, built from a config.

Nothing is imported here: ``import rcnn`` stays cheap.
"""

__version__ = "0.1.0"
