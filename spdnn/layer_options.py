"""Per-layer options that are not op attributes: ``trainable``, ``init`` and ``spectral_norm``.

A spec writes them beside the op's attributes::

    - {name: conv1, op: conv2d, out_channels: 8, kernel_size: 3,
       trainable: false,                           # parameters frozen: requires_grad False
       init: {weight: orthogonal, bias: zeros},    # or init: xavier (the weight only)
       spectral_norm: true}                        # W / sigma(W), conv2d, conv_transpose2d, linear

Rules:
  1. ``trainable: false`` freezes every parameter of the layer (``requires_grad`` False); the
     optimisers of ``spdnn train`` take only parameters that require gradients, and the summary
     counts the layer's parameters as frozen.
  2. ``init`` is a rule name (it initialises the parameter ``weight``) or a mapping from parameter
     name to rule. A rule is a name (``orthogonal``, ``xavier``, ``kaiming``, ``normal``, ``zeros``,
     ``ones``) or a mapping ``{rule: normal, std: 0.02, mean: 0}`` / ``{rule: constant, value: 0.1}``.
     ``normal`` alone has std 0.02 (the DCGAN convention); ``constant`` needs ``value``.
     ``orthogonal``, ``xavier`` and ``kaiming`` need a parameter of two or more dimensions.
     A parameter name the layer does not have is an error located at the layer (found when the
     torch module is built, which knows the parameters).
  3. ``spectral_norm: true`` reparametrises ``weight`` as W / sigma(W) with
     ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per training forward).
     The state dict then holds ``<layer>.parametrizations.weight.original`` and the power iteration's
     vectors ``...weight.0._u`` / ``._v`` instead of ``<layer>.weight``; the ONNX export writes the
     normalised weight W / sigma as ``<layer>.weight`` (sigma = u . W v, as torch computes in eval).
     Only on ``conv2d``, ``conv_transpose2d`` and ``linear``. Init rules apply before the
     reparametrisation, to the original weight.

This module is core: it never imports torch (the torch backend applies the options).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

__all__ = ["InitRule", "LayerOptions", "METADATA_KEY", "OPTION_KEYS", "SPECTRAL_NORM_OPS", "NEEDS_MATRIX",
           "options_json"]

#: The layer keys handled here (the YAML frontend keeps them out of the op's attributes).
OPTION_KEYS = ("trainable", "init", "spectral_norm")
#: Where exported models (ONNX metadata) keep the layers' non-default options, as JSON.
METADATA_KEY = "spdnn_layer_options"
#: Ops whose ``weight`` spectral normalisation applies to.
SPECTRAL_NORM_OPS = ("conv2d", "conv_transpose2d", "linear")
#: Rules defined only for parameters of two or more dimensions.
NEEDS_MATRIX = ("orthogonal", "xavier", "kaiming")
RuleName = Literal["orthogonal", "xavier", "kaiming", "normal", "zeros", "ones", "constant"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InitRule(_Strict):
    """How one parameter is initialised."""

    rule: RuleName
    std: float | None = Field(default=None, gt=0, description="normal: standard deviation (default 0.02)")
    mean: float = Field(default=0.0, description="normal: mean")
    value: float | None = Field(default=None, description="constant: the value")

    @model_validator(mode="after")
    def _arguments_fit_the_rule(self) -> InitRule:
        if self.rule == "constant" and self.value is None:
            raise ValueError("init rule 'constant' needs a value: {rule: constant, value: 0.1}")
        if self.rule != "constant" and self.value is not None:
            raise ValueError(f"init rule {self.rule!r} takes no value (only 'constant' does)")
        if self.rule != "normal" and (self.std is not None or self.mean != 0.0):
            raise ValueError(f"init rule {self.rule!r} takes no std or mean (only 'normal' does)")
        return self

    @property
    def normal_std(self) -> float:
        return 0.02 if self.std is None else self.std


class LayerOptions(_Strict):
    """The options of one layer (defaults: trainable, the op's own init, no spectral norm)."""

    trainable: StrictBool = True
    init: dict[str, InitRule] = {}
    spectral_norm: StrictBool = False

    @field_validator("init", mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, (str, BaseModel)) or (isinstance(value, dict) and "rule" in value):
            value = {"weight": value}
        if isinstance(value, dict):
            return {k: ({"rule": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    def is_default(self) -> bool:
        return self == LayerOptions()


def options_json(options: dict[str, LayerOptions]) -> str:
    """``{"layer": {"trainable": false}, ...}``: the non-default options of each layer, as JSON."""
    return json.dumps({name: o.model_dump(mode="json", exclude_defaults=True) for name, o in options.items()},
                      sort_keys=True)
