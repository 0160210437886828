"""Loading pretrained weights from a local checkpoint into a classification network.

Accepted files (all read with ``torch.load(path, map_location="cpu", weights_only=True)``):

* a plain state_dict, ``{name: tensor}``: torchvision's ImageNet files (``torch.save(model.state_dict())``),
  timm's (the SE-ResNets here use timm's ``seresnet*`` names);
* a training checkpoint ``{"model": state_dict, ...}`` as written by ``tools/train_classifier.py``, or
  ``{"state_dict": state_dict, ...}``;
* either with the ``module.`` prefix of DistributedDataParallel (or ``_orig_mod.`` of ``torch.compile``).

The match is strict: same names, same shapes. One difference is tolerated: a different number of
classes. The *class layers* are the parameters whose shapes differ from the checkpoint's in dimension 0
only, belong to an ``nn.Linear``/``nn.Conv2d`` whose output size is the model's number of classes
(``model.num_classes``, else the output size of the model's last ``nn.Linear``), and all agree on the
checkpoint's class count. This catches the final classifier and any auxiliary classifier (GoogLeNet's
aux ``fc2``) without a list per network. Those layers keep their fresh initialisation and a warning names
them with both class counts (``strict_classes=True`` makes it an error). Anything else raises a
:class:`WeightsError` (a ``ValueError``) listing the missing, unexpected and mis-shaped keys.
BatchNorm's ``num_batches_tracked`` counters are bookkeeping, not weights, and are ignored when present on
one side only.
A mismatch is summarised in at most five lines (:func:`describe_mismatch`) with the likely fix: the
``width`` option of the config, or a sibling layout (``alexnet_tv``, ``googlenet_bn``) whose names fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

_PREFIXES = ("module.", "_orig_mod.")
_BOOKKEEPING = ("num_batches_tracked",)


class WeightsError(ValueError):
    """A checkpoint that is not one, or does not fit the model (the message says how, in at most 5 lines)."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The state_dict stored in ``path`` (any of the layouts in the module docstring), prefixes stripped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and format errors all mean "not a checkpoint we can read"
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path}: not a PyTorch checkpoint readable with torch.load(weights_only=True) ({detail})"
        ) from e
    state = obj
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                state = obj[key]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        what = (
            f"a dict with keys {sorted(map(str, obj))[:10]}"
            if isinstance(obj, Mapping)
            else type(obj).__name__
        )
        raise WeightsError(
            f"{path}: no state_dict found (expected {{name: tensor}}, or one under 'model'/'state_dict'; "
            f"got {what})"
        )
    state = {str(k): v for k, v in state.items()}
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _num_classes(model: nn.Module) -> int | None:
    n = getattr(model, "num_classes", None)
    if isinstance(n, int):
        return n
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _class_layers(
    model: nn.Module, mismatched: dict[str, tuple[torch.Size, torch.Size]]
) -> tuple[list[str], int, int] | None:
    """Module names of the class layers among the mis-shaped keys, with (checkpoint, model) class counts;
    None unless every mis-shaped key is explained by a different number of classes."""
    n_model = _num_classes(model)
    if n_model is None or not mismatched:
        return None
    modules = dict(model.named_modules())
    layers: set[str] = set()
    n_ckpt: set[int] = set()
    for key, (ckpt_shape, model_shape) in mismatched.items():
        owner = key.rpartition(".")[0]
        module = modules.get(owner)
        out = getattr(module, "out_features", getattr(module, "out_channels", None))
        if (
            not isinstance(module, (nn.Linear, nn.Conv2d))
            or len(ckpt_shape) != len(model_shape)
            or ckpt_shape[1:] != model_shape[1:]
            or model_shape[0] != n_model
            or out != n_model
        ):
            return None
        layers.add(owner)
        n_ckpt.add(ckpt_shape[0])
    if len(n_ckpt) != 1:
        return None
    return sorted(layers), n_ckpt.pop(), n_model


_SHOWN = 3  # keys listed per kind in a mismatch summary


def _listed(items: list[str]) -> str:
    more = f", ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _width_hint(model: nn.Module, mismatched: dict[str, tuple[torch.Size, torch.Size]]) -> str | None:
    """For a network with a ``width`` option: the width the checkpoint was trained with, when every
    mis-shaped tensor is the model's scaled by one factor in its channel dimensions."""
    width = getattr(model, "width", None)
    if not isinstance(width, int) or not mismatched:
        return None
    ratios = set()
    for ckpt, own in mismatched.values():
        if len(ckpt) != len(own):
            return None
        ratios |= {c / m for c, m in zip(ckpt[:2], own[:2]) if c != m and m}
    if len(ratios) != 1:
        return None
    ckpt_width = round(width * ratios.pop())
    return (
        f"the model is built with the option width={width} (options: {{width: {width}}} in the config), "
        f"the checkpoint with width={ckpt_width}: drop the width option (or set it to {ckpt_width})"
    )


def _layout_hint(
    state: Mapping[str, Tensor], alternatives: Mapping[str, Callable[[], nn.Module]]
) -> str | None:
    """The first of ``alternatives`` (name -> builder) whose parameter names are exactly the checkpoint's."""
    wanted = {k for k in state if k.rpartition(".")[2] not in _BOOKKEEPING}
    for name, build in alternatives.items():
        with torch.device("meta"):  # names only: nothing is allocated
            names = {k for k in build().state_dict() if k.rpartition(".")[2] not in _BOOKKEEPING}
        if names == wanted:
            return (
                f"the checkpoint has the layout of '{name}' (the same network, other layer names): use {name}"
            )
    return None


def describe_mismatch(
    source: str,
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    alternatives: Mapping[str, Callable[[], nn.Module]] | None = None,
) -> str | None:
    """Why ``state`` does not fit ``model``, in at most five lines: what differs (a few keys of each kind,
    with counts) and the likely fix (the ``width`` option, another layout such as ``alexnet_tv`` /
    ``googlenet_bn`` among ``alternatives``); None when it fits (a different number of classes aside)."""
    own = model.state_dict()
    missing, unexpected, mismatched = _differences(own, state)
    if not (missing or unexpected or (mismatched and _class_layers(model, mismatched) is None)):
        return None
    lines = [f"{source}: checkpoint does not fit {type(model).__name__}"]
    if missing and unexpected:
        lines[0] += " (names differ: a checkpoint of another network or layout?)"
    for title, keys in (
        ("missing from the checkpoint", missing),
        ("unexpected in the checkpoint", unexpected),
    ):
        if keys:
            lines.append(f"  {title} ({len(keys)}): " + _listed([f"{k} {tuple(v)}" for k, v in keys.items()]))
    if mismatched:
        shapes = [f"{k} checkpoint {tuple(c)} vs model {tuple(m)}" for k, (c, m) in mismatched.items()]
        lines.append(f"  mis-shaped ({len(mismatched)}): " + _listed(shapes))
    hint = (_width_hint(model, mismatched) if not (missing or unexpected) else None) or (
        _layout_hint(state, alternatives) if alternatives and (missing or unexpected) else None
    )
    if hint:
        lines.append(f"  likely fix: {hint}")
    return "\n".join(lines)


def _differences(
    own: Mapping[str, Tensor], state: Mapping[str, Tensor]
) -> tuple[dict[str, torch.Size], dict[str, torch.Size], dict[str, tuple[torch.Size, torch.Size]]]:
    """(missing, unexpected, mis-shaped) keys of ``state`` against the model's ``own`` state_dict."""

    def bookkeeping(key: str) -> bool:
        return key.rpartition(".")[2] in _BOOKKEEPING

    missing = {k: v.shape for k, v in own.items() if k not in state and not bookkeeping(k)}
    unexpected = {k: v.shape for k, v in state.items() if k not in own and not bookkeeping(k)}
    mismatched = {
        k: (state[k].shape, own[k].shape) for k in own if k in state and state[k].shape != own[k].shape
    }
    return missing, unexpected, mismatched


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    *,
    strict_classes: bool = False,
    trunk: bool = False,
    key: str | None = None,
    alternatives: Mapping[str, Callable[[], nn.Module]] | None = None,
) -> nn.Module:
    """Copy the weights stored in ``path`` into ``model`` (in place) and return it.

    Raises FileNotFoundError for a missing file, WeightsError for a file that is not a checkpoint or does not
    fit (summarised by :func:`describe_mismatch`, which tries ``alternatives`` for the likely fix). A
    different number of classes only re-initialises the class layers, with a warning (a ValueError with
    ``strict_classes=True``), or silently with ``trunk=True``: the model is cut for detection afterwards
    and its class layers are never used. ``key`` (e.g. ``"model.backbone.weights"``), the config key
    that named ``path``, starts every message.
    """
    try:
        state = read_state_dict(path)
        return load_state(
            model,
            state,
            source=str(path),
            strict_classes=strict_classes,
            trunk=trunk,
            alternatives=alternatives,
        )
    except (FileNotFoundError, ValueError) as e:
        if key is None:
            raise
        raise type(e)(f"{key}={e}" if str(e).startswith(str(path)) else f"{key}: {e}") from None


def load_state(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    source: str = "state_dict",
    strict_classes: bool = False,
    trunk: bool = False,
    alternatives: Mapping[str, Callable[[], nn.Module]] | None = None,
) -> nn.Module:
    """:func:`load_pretrained` for a state_dict already in memory; ``source`` names it in messages."""
    problem = describe_mismatch(source, model, state, alternatives=alternatives)
    if problem:
        raise WeightsError(problem)
    own = model.state_dict()
    _, _, mismatched = _differences(own, state)
    classes = _class_layers(model, mismatched)
    skipped: list[str] = []
    if classes is not None:
        skipped, n_ckpt, n_model = classes
        message = (
            f"{source}: the checkpoint has {n_ckpt} classes, the model {n_model}; "
            f"not loading the class layer(s) {', '.join(skipped)} (they keep their initialisation)"
        )
        if strict_classes:
            raise WeightsError(message)
        if not trunk:
            warnings.warn(message, UserWarning, stacklevel=3)
    kept = {k: v for k, v in state.items() if k in own and k.rpartition(".")[0] not in skipped}
    model.load_state_dict(kept, strict=False)  # strictness was checked above, bookkeeping aside
    return model
