"""Starting a new training from a trained detector: ``model.weights=DETECTOR.pth``.

    model = build_detector(cfg.model, num_classes)
    reinitialised = load_detector_weights(model, cfg.model.weights, train_set.class_names)

The file is a checkpoint written by ``tools/train_detector.py`` (``model_<iter>.pth``, ``model_final.pth``)
or a plain state_dict. Every weight whose name and shape fit is copied. When the class set differs from
the checkpoint's (another count, or other names or order: the ``class_names`` of its metadata), the
class-score and box-regression layers of the predictor (``roi_heads.predictor.*``) keep their fresh
initialisation instead, and one warning line names them and the two class lists. Any other difference
(a key missing on either side, another shape) is an error that lists the keys, as
:func:`backbones.weights.load_pretrained` does for classifiers.

Only weights are read: the iteration, optimizer and learning-rate schedule of the new run start fresh. That
is the difference from ``--resume``, which continues a run where it stopped (and wins when both are given:
a fine-tuning run's own checkpoints resume it).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence

from torch import Tensor, nn

from backbones.weights import load_state
from rcnn.config import ConfigError
from rcnn.utils.io import load_checkpoint

logger = logging.getLogger(__name__)

CLASS_LAYERS = ("roi_heads.predictor.cls_score", "roi_heads.predictor.bbox_pred")


def read_detector_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Tensor], list[str] | None]:
    """The weights in ``path`` (a training checkpoint's ``model``, or a plain state_dict; the ``module.``
    prefix of DistributedDataParallel stripped) and the ``class_names`` it recorded, or None."""
    path = os.fspath(path)
    try:
        obj = load_checkpoint(path, weights_only=False)  # training checkpoints hold the RNG state too
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ConfigError(f"model.weights: {path}: not a checkpoint torch.load can read ({e})") from None
    state = obj.get("model", obj)
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"model.weights: {path}: no detector weights (keys {sorted(map(str, obj))[:10]})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    meta = (obj.get("extra") or {}).get("metadata") or obj.get("metadata") or {}
    names = meta.get("class_names")
    return dict(state), ([str(n) for n in names] if names else None)


def load_detector_weights(model: nn.Module, path: str | os.PathLike, class_names: Sequence[str]) -> list[str]:
    """Copy the weights of the detector checkpoint ``path`` into ``model`` (in place), for a training on
    ``class_names``; returns the layers left at their initialisation (empty when the class sets agree).

    Raises FileNotFoundError for a missing file and ConfigError (naming ``model.weights``) for a file that
    is not a checkpoint or whose weights do not fit the model beyond the class layers.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.weights: checkpoint not found: {path}")
    state, source_names = read_detector_checkpoint(path)
    own = model.state_dict()
    class_keys = [k for k in own if k.rpartition(".")[0] in CLASS_LAYERS]
    source_classes = _class_count(state)
    target_names = list(class_names)
    differ = (source_names is not None and source_names != target_names) or (
        source_classes is not None and source_classes != len(target_names)
    )
    reinitialised: list[str] = []
    if differ and class_keys:
        for key in class_keys:  # the model's own fresh values: load_state then checks all the rest
            state[key] = own[key]
        reinitialised = [
            layer for layer in CLASS_LAYERS if any(k.startswith(layer + ".") for k in class_keys)
        ]
        before = source_names if source_names is not None else f"{source_classes} unnamed classes"
        logger.warning(
            "model.weights: the class set differs, re-initialising %s; checkpoint classes %s, training "
            "classes %s",
            ", ".join(reinitialised),
            before,
            target_names,
        )
    try:
        load_state(model, state, source=f"model.weights={path}", strict_classes=True)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return reinitialised


def _class_count(state: dict[str, Tensor]) -> int | None:
    """K from the checkpoint's class-score layer, which has K + 1 outputs (background included)."""
    weight = state.get(f"{CLASS_LAYERS[0]}.weight")
    return int(weight.shape[0]) - 1 if weight is not None else None
