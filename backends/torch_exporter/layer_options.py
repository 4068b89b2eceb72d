"""Apply a layer's options (:mod:`spdnn.layer_options`) to its freshly lowered torch module.

Order: init rules first (on the plain parameters), then spectral normalisation (which moves
``weight`` to ``parametrizations.weight.original`` and starts its power iteration from the
initialised weight), then ``trainable: false`` (every parameter, the original weight included).
"""

from __future__ import annotations

import torch
from torch import nn

from spdnn.errors import ExportError, Problem, SpecError
from spdnn.layer_options import NEEDS_MATRIX, InitRule, LayerOptions

__all__ = ["apply_layer_options", "set_normalised_weight"]


def _fail(layer: str, message: str, origin: Problem | None) -> None:
    """A located SpecError when the layer came from a spec, else an ExportError."""
    message = f"layer {layer!r}: {message}"
    if origin is not None:
        raise SpecError(Problem(message, origin.file, origin.line, origin.column, origin.where))
    raise ExportError(message)


@torch.no_grad()
def _initialise(param: nn.Parameter, rule: InitRule) -> None:
    kind = rule.rule
    if kind == "orthogonal":
        nn.init.orthogonal_(param)
    elif kind == "xavier":
        nn.init.xavier_uniform_(param)
    elif kind == "kaiming":
        nn.init.kaiming_uniform_(param, nonlinearity="relu")
    elif kind == "normal":
        nn.init.normal_(param, mean=rule.mean, std=rule.normal_std)
    elif kind == "zeros":
        nn.init.zeros_(param)
    elif kind == "ones":
        nn.init.ones_(param)
    else:
        nn.init.constant_(param, rule.value)


def apply_layer_options(name: str, module: nn.Module, options: LayerOptions | None,
                        origin: Problem | None = None) -> nn.Module:
    """Initialise, spectrally normalise and freeze ``module`` as ``options`` say (in place)."""
    if options is None:
        return module
    params = dict(module.named_parameters())
    for key, rule in options.init.items():
        if key not in params:
            have = ", ".join(params) or "none"
            _fail(name, f"init: no parameter {key!r} (its parameters: {have})", origin)
        if rule.rule in NEEDS_MATRIX and params[key].dim() < 2:
            _fail(name, f"init: {rule.rule} needs a parameter of 2 or more dimensions; {key!r} has shape "
                  f"{tuple(params[key].shape)} (use zeros, ones, constant or normal)", origin)
        _initialise(params[key], rule)
    if options.spectral_norm:
        if not isinstance(params.get("weight"), nn.Parameter):
            _fail(name, "spectral_norm: the layer has no weight", origin)
        nn.utils.parametrizations.spectral_norm(module, "weight")
    if not options.trainable:
        if not params:
            _fail(name, "trainable: false, but the layer has no parameters", origin)
        module.requires_grad_(False)
    return module



@torch.no_grad()
def set_normalised_weight(module: nn.Module, weight: torch.Tensor) -> None:
    """Load an already normalised weight (W / sigma, as exported to ONNX) into a layer under
    spectral normalisation so that its eval forward uses exactly that weight.

    The weight becomes the original; v is its top right singular vector and u = W v / |W v|^2,
    so torch's eval-mode sigma = u . (W v) is 1. Training renormalises u and v at the next power
    iteration (they are normalised there), so it continues from a proper estimate.
    """
    norm = module.parametrizations.weight[0]
    module.parametrizations.weight.original.copy_(weight)
    matrix = weight.movedim(norm.dim, 0).flatten(1).double()
    v = torch.linalg.svd(matrix, full_matrices=False).Vh[0]
    wv = matrix @ v
    norm._v.copy_(v.to(norm._v.dtype))
    norm._u.copy_((wv / wv.dot(wv)).to(norm._u.dtype))
