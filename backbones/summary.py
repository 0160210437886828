"""Per-layer summary of a network: output shapes, parameters, multiply-adds and activation sizes.

    s = summarize(build_classifier("vgg16"), input_size=(3, 224, 224))
    print(s.table())
    s.params, s.macs, s.activations, s.activation_mb
    s.by_prefix("features")          # GroupTotals(params, macs, activations) of one submodule
    s.rows_under("inception3a")      # its rows

One image (batch 1) runs through the model in eval mode under ``torch.no_grad()``, with a forward hook on
every leaf module (a module without children). What is counted, per image:

* **params**: every parameter of the model (``Summary.params``), shared ones once; a row shows the
  parameters of that leaf module itself (a module called twice shows them on its first row only).
* **MACs** (multiply-accumulates, the papers' "multiply-adds"): convolutions
  ``out_values * in_channels / groups * kernel_area`` (transposed: ``in_values * out_channels / groups *
  kernel_area``), linear layers ``out_values * in_features``. Biases, pooling, local response normalisation,
  batch norm, activations and element-wise additions count 0: they are a few percent at most and are left
  out by the published figures (ResNet-50's 3.9-4.1 G, GoogLeNet's Table 1).
* **activations**: the values of the input image plus the outputs of the layers that produce a new
  tensor: convolutions, linear layers, local response normalisation and pooling that changes the shape
  (an ``AdaptiveAvgPool2d`` already at its output size is an identity). Element-wise layers (activation
  functions, batch norm, dropout) are taken as in place. This is the "memory" column of the cs231n VGG-16
  table (https://cs231n.github.io/convolutional-networks/#case): its rows sum to 15.24 M values, 61 MB
  in fp32 (the "24M ~= 93MB" printed under that table does not follow from its own rows; see
  cs231n/cs231n.github.io issue #88). ``activation_mb`` is ``4 * activations / 2**20`` (MiB, fp32).

Only shapes are used: a model built under ``with torch.device("meta"):`` (no memory, no initialisation)
gives the same summary in a fraction of the time.

Operations done by functions (``torch.flatten``, ``F.relu``, ``x + identity``) are not modules and do not
appear; none of them has parameters, and only the element-wise ones hide MACs (counted 0 anyway).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.pooling import (
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _AvgPoolNd,
    _LPPoolNd,
    _MaxPoolNd,
)

_POOLS = (_MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _LPPoolNd)


@dataclass(frozen=True)
class LayerRow:
    """One call of one leaf module, per image."""

    name: str  # qualified module name, e.g. "features.0"
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int
    activations: int  # values in the output
    counted: bool  # whether the output is part of Summary.activations


@dataclass(frozen=True)
class GroupTotals:
    params: int
    macs: int
    activations: int


@dataclass
class Summary:
    """The result of :func:`summarize`; ``str(summary)`` is :meth:`table`."""

    model_name: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    params: int  # all parameters of the model
    trainable_params: int
    macs: int  # per image
    activations: int  # per image: input + counted layer outputs
    module_params: dict[str, int] = field(default_factory=dict, repr=False)  # qualified name -> params

    @property
    def activation_mb(self) -> float:
        """Memory of the counted activations of one image in fp32, in MiB."""
        return self.activations * 4 / 2**20

    def rows_under(self, prefix: str) -> list[LayerRow]:
        """The rows of the module ``prefix`` and everything inside it ("" for all rows)."""
        if not prefix:
            return list(self.rows)
        return [r for r in self.rows if r.name == prefix or r.name.startswith(prefix + ".")]

    def by_prefix(self, prefix: str) -> GroupTotals:
        """Totals of the submodule ``prefix``: all its parameters (including those of layers that did not
        run, e.g. auxiliary classifiers in eval mode), the MACs and counted activations of its rows."""
        if prefix and prefix not in self.module_params:
            raise KeyError(f"no module named '{prefix}' in {self.model_name}")
        rows = self.rows_under(prefix)
        return GroupTotals(
            params=self.module_params[prefix] if prefix else self.params,
            macs=sum(r.macs for r in rows),
            activations=sum(r.activations for r in rows if r.counted),
        )

    def table(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params", "MACs", "Activations")
        lines = [
            (
                r.name,
                r.type,
                "x".join(map(str, r.output_shape)),
                f"{r.params:,}",
                f"{r.macs:,}",
                f"{r.activations:,}",
            )
            for r in self.rows
        ]
        widths = [
            max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
        ]

        def fmt(cells: Sequence[str]) -> str:
            left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3])]
            right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:])]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(fmt(["-" * w for w in widths]))
        out = [fmt(header), rule, *(fmt(line) for line in lines), rule]
        size = "x".join(map(str, self.input_size))
        out += [
            f"{self.model_name}, input {size}, per image:",
            f"  parameters   {self.params:,} ({_human(self.params)}; trainable {self.trainable_params:,})",
            f"  MACs         {self.macs:,} ({_human(self.macs)} multiply-adds)",
            f"  activations  {self.activations:,} ({_human(self.activations)} values, input included;"
            f" {self.activation_mb:.2f} MiB in fp32, forward only)",
        ]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _tensors(x: object) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in _tensors(item)]
    if isinstance(x, dict):
        return [t for item in x.values() for t in _tensors(item)]
    return []


def _macs(module: nn.Module, inputs: list[Tensor], outputs: list[Tensor]) -> int:
    """Multiply-accumulates of one call, for the whole batch."""
    if isinstance(module, _ConvTransposeNd) and inputs:
        k = math.prod(module.kernel_size)
        return inputs[0].numel() * (module.out_channels // module.groups) * k
    if isinstance(module, _ConvNd) and outputs:
        k = math.prod(module.kernel_size)
        return outputs[0].numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear) and outputs:
        return outputs[0].numel() * module.in_features
    return 0


def _counted(module: nn.Module, inputs: list[Tensor], outputs: list[Tensor]) -> bool:
    if isinstance(module, (_ConvNd, nn.Linear, nn.LocalResponseNorm)):
        return True
    if isinstance(module, _POOLS):
        return not inputs or not outputs or inputs[0].shape != outputs[0].shape
    return False


def summarize(
    model: nn.Module, input_size: Sequence[int] = (3, 224, 224), *, name: str | None = None
) -> Summary:
    """Run one ``input_size`` image (no batch dimension) through ``model`` and tabulate its leaf layers
    (see the module docstring for what is counted). The model's training mode is restored afterwards."""
    input_size = tuple(int(v) for v in input_size)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    rows: list[LayerRow] = []
    seen: set[str] = set()

    def hook(module_name: str):
        def record(module: nn.Module, args: tuple, output: object) -> None:
            ins, outs = _tensors(args), _tensors(output)
            batch = outs[0].shape[0] if outs and outs[0].dim() > 0 else 1
            first = module_name not in seen
            seen.add(module_name)
            rows.append(
                LayerRow(
                    name=module_name,
                    type=type(module).__name__,
                    output_shape=tuple(outs[0].shape[1:]) if outs else (),
                    params=sum(p.numel() for p in module.parameters(recurse=False)) if first else 0,
                    macs=_macs(module, ins, outs) // batch,
                    activations=sum(t.numel() for t in outs) // batch,
                    counted=_counted(module, ins, outs),
                )
            )

        return record

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    if not any(True for _ in model.children()):
        leaves = [(type(model).__name__, model)]
    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_size), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    module_params = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_modules() if n}
    return Summary(
        model_name=name or type(model).__name__,
        input_size=input_size,
        rows=rows,
        params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=sum(r.macs for r in rows),
        activations=math.prod(input_size) + sum(r.activations for r in rows if r.counted),
        module_params=module_params,
    )
