"""Truncated SVD of the region head's fully connected layers (Girshick, Fast R-CNN, ICCV 2015, Sec. 3.1).

A layer ``y = W x + b`` with ``W`` of shape (u, v) (u outputs, v inputs) is replaced by the two layers of the
rank-t approximation ``W ~ U_t S_t V_t^T``: first ``Linear(v, t, bias=False)`` with weight ``S_t V_t^T``
(t, v), then ``Linear(t, u)`` with weight ``U_t`` (u, t) and the original bias. Multiply-adds per RoI go from
u v to t (u + v); by Eckart-Young it is the best rank-t approximation in Frobenius norm. In Fast R-CNN most
of the test-time work on ~2000 selective search RoIs is in fc6/fc7, and the paper keeps the top 1024
singular values of VGG-16's fc6 (25088 -> 4096) and 256 of fc7 (4096 -> 4096): 30% less detection time for
a 0.3 point mAP drop on VOC07.

Test time only: compress after the trained weights are loaded (the compressed model's state_dict has other
keys, so it is not a checkpoint of the config's model). A region head without fully connected layers
(ResNet / SE-ResNet C4 and GoogLeNet heads are convolutions + pooling) is an error: there the predictor's
two small layers are all that could be factored, which saves nothing measurable.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class TruncatedSVDLinear(nn.Sequential):
    """``Linear(v, t, bias=False)`` then ``Linear(t, u)``: ``(R, v) -> (R, u)``; made by
    :func:`truncated_svd_linear`. ``rank`` is t."""

    def __init__(self, first: nn.Linear, second: nn.Linear):
        super().__init__(first, second)
        self.rank = first.out_features


Factors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # U (u, m), S (m,), V^T (m, v); m = min(u, v)


@torch.no_grad()
def truncated_svd_linear(linear: nn.Linear, rank: int, factors: Factors | None = None) -> TruncatedSVDLinear:
    """The rank-``rank`` factorisation of ``linear`` (an ``nn.Sequential`` of two ``nn.Linear``).

    ``linear``: (R, v) -> (R, u); ``1 <= rank <= min(u, v)`` (at ``min(u, v)`` the factorisation is exact).
    The SVD (:func:`svd_factors`) is computed on the layer's device, unless ``factors`` (what
    :func:`svd_factors` returns for this layer) are given: factoring one layer at several ranks then costs
    one SVD (about a minute on one CPU core for VGG-16's fc6). The new layers have the layer's dtype and
    device.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
    out_features, in_features = linear.weight.shape
    if not 1 <= rank <= min(out_features, in_features):
        raise ValueError(
            f"rank must be in [1, {min(out_features, in_features)}] for a {in_features} -> {out_features} "
            f"layer, got {rank}"
        )
    weight = linear.weight.detach()
    u, s, vh = svd_factors(linear) if factors is None else factors
    kwargs = {"device": weight.device, "dtype": weight.dtype}
    first = nn.Linear(in_features, rank, bias=False, **kwargs)
    second = nn.Linear(rank, out_features, bias=linear.bias is not None, **kwargs)
    first.weight.copy_(s[:rank, None] * vh[:rank])  # (t, v): S_t V_t^T
    second.weight.copy_(u[:, :rank])  # (u, t): U_t
    if linear.bias is not None:
        second.bias.copy_(linear.bias.detach())
    for layer in (first, second):
        layer.requires_grad_(linear.weight.requires_grad)
    return TruncatedSVDLinear(first, second)


GRAM_MIN_SIDE = 1024  # layers with min(u, v) at least this factor through the Gram matrix (see svd_factors)


@torch.no_grad()
def svd_factors(linear: nn.Linear) -> Factors:
    """The SVD of the layer's weight (u, v) in float32: U (u, m), S (m,), V^T (m, v), singular values in
    descending order.

    Small layers go through ``torch.linalg.svd``. Layers with ``min(u, v) >= GRAM_MIN_SIDE`` (fc6 / fc7
    of AlexNet, ZFNet, VGG) go through :func:`gram_svd`, in float64: the same factors for every singular
    value that matters, several times faster on a CPU (AlexNet's fc6: about 6x).
    """
    weight = linear.weight.detach()
    if min(weight.shape) >= GRAM_MIN_SIDE:
        return gram_svd(weight)
    return torch.linalg.svd(weight.float(), full_matrices=False)


@torch.no_grad()
def gram_svd(weight: torch.Tensor) -> Factors:
    """The thin SVD of ``weight`` (u, v) from the eigendecomposition of its smaller Gram matrix, in float64,
    returned in float32: for u <= v, ``W W^T = U S^2 U^T``, then ``S V^T = U^T W``.

    ``S_t V_t^T`` is computed as ``U_t^T W`` (no division by S), so the rank-t layer pair is ``U_t U_t^T W``:
    the projection of W onto its top-t left singular vectors, which is the truncated SVD exactly. Squaring
    only costs relative accuracy on singular values below about ``1e-8`` of the largest, where the rows of
    ``V^T`` are rescaled from ``U^T W`` without changing that product."""
    w = weight.detach().double()
    if w.shape[0] > w.shape[1]:  # factor the transpose, whose Gram matrix is the smaller one
        u, s, vh = gram_svd(w.T)
        return vh.T.contiguous(), s, u.T.contiguous()
    eigenvalues, u = torch.linalg.eigh(w @ w.T)  # ascending
    eigenvalues, u = eigenvalues.flip(0), u.flip(1)
    svt = u.T @ w  # (m, v): S V^T
    s = svt.norm(dim=1)
    vh = svt / s.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    return u.float(), s.float(), vh.float()


def saves_work(linear: nn.Linear, rank: int) -> bool:
    """Whether rank ``rank`` costs fewer multiply-adds than the layer: ``t (u + v) < u v``."""
    out_features, in_features = linear.weight.shape
    return 0 < rank < min(out_features, in_features) and rank * (in_features + out_features) < (
        in_features * out_features
    )


def compress_box_head(
    model: nn.Module, rank: int | Mapping[str, int], factors: dict[str, Factors] | None = None
) -> dict[str, tuple[int, int, int]]:
    """Replace the fully connected layers of the region head by their truncated SVD, in place.

    model: a :class:`~rcnn.detectors.generalized_rcnn.GeneralizedRCNN` (or its ``roi_heads``) after its
    weights are loaded. rank: an int t applied to every ``nn.Linear`` of ``roi_heads.box_head`` (fc6, fc7
    for VGG / AlexNet / ZFNet) and of the predictor (``cls_score``, ``bbox_pred``) where rank t costs fewer
    multiply-adds (:func:`saves_work`; the predictor's layers are usually too narrow to gain); or a mapping
    from layer names relative to ``roi_heads`` to ranks, e.g. the paper's VGG-16 setting
    ``{"box_head.layers.1": 1024, "box_head.layers.4": 256}`` (every named layer is factored).

    factors: a cache ``{layer name: SVD factors}`` shared by calls on copies of one model (the benchmark
    factors one detector at several ranks): a layer's SVD is computed once, then reused.

    Returns ``{name: (in_features, rank, out_features)}`` of the replaced layers. Layers already factored
    are left as they are. Raises ``ValueError`` when ``rank`` is an int and the box head has no
    ``nn.Linear`` (ResNet C4 heads: nothing worth factoring), or a name of ``rank`` is not a fully connected
    layer of the head or predictor. A mapping may name only predictor layers, also behind a C4 head (to
    measure what factoring the classifier costs in accuracy; it saves no measurable time).
    """
    roi_heads = getattr(model, "roi_heads", model)
    box_head = getattr(roi_heads, "box_head", None)
    predictor = getattr(roi_heads, "predictor", None)
    if box_head is None or predictor is None:
        raise TypeError(
            f"expected a detector with roi_heads.box_head / .predictor, got {type(model).__name__}"
        )
    inside = {n for n, m in roi_heads.named_modules() if isinstance(m, TruncatedSVDLinear)}

    def layers(prefix: str, module: nn.Module) -> list[tuple[str, nn.Linear]]:
        found = []
        for name, m in module.named_modules(prefix=prefix):
            if isinstance(m, nn.Linear) and name.rpartition(".")[0] not in inside:
                found.append((name, m))
        return found

    head_layers = layers("box_head", box_head)
    head_factored = any(n.startswith("box_head") for n in inside)
    if not isinstance(rank, Mapping) and not head_layers and not head_factored:
        kinds = sorted(
            {type(m).__name__ for m in box_head.modules()} - {type(box_head).__name__, "Sequential"}
        )
        raise ValueError(
            f"the region head has no fully connected layer (it is made of {', '.join(kinds)}): truncated SVD "
            "applies to fc heads (VGG, AlexNet, ZFNet); set model.roi_heads.svd_rank=0"
        )
    candidates = dict(head_layers + layers("predictor", predictor))
    if isinstance(rank, Mapping):
        unknown = sorted(set(rank) - set(candidates))
        if unknown:
            raise ValueError(
                f"not fully connected layers of the region head: {unknown}; valid: {sorted(candidates)}"
            )
        plan = {name: int(t) for name, t in rank.items()}
    else:
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        plan = {name: int(rank) for name, linear in candidates.items() if saves_work(linear, int(rank))}
    replaced: dict[str, tuple[int, int, int]] = {}
    for name, t in plan.items():
        linear = candidates[name]
        parent_name, _, child = name.rpartition(".")
        if factors is not None and name not in factors:
            factors[name] = svd_factors(linear)
        layer_factors = factors[name] if factors is not None else None
        setattr(roi_heads.get_submodule(parent_name), child, truncated_svd_linear(linear, t, layer_factors))
        replaced[name] = (linear.in_features, t, linear.out_features)
    return replaced
