"""Shape-preserving ops: activations, normalisation, dropout and noise."""

from __future__ import annotations

from pydantic import Field, PositiveFloat

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, no_flops, register_op

__all__ = [
    "NoAttrs",
    "LeakyReluAttrs",
    "EluAttrs",
    "SoftmaxAttrs",
    "BatchNormAttrs",
    "DropoutAttrs",
    "GaussianNoiseAttrs",
]


class NoAttrs(OpAttrs):
    """An op without attributes."""


class LeakyReluAttrs(OpAttrs):
    """LeakyReLU: x if x > 0 else negative_slope * x."""

    negative_slope: float = 0.01
    """Slope for negative inputs."""


class EluAttrs(OpAttrs):
    """ELU: x if x > 0 else alpha * (exp(x) - 1)."""

    alpha: float = 1.0
    """Scale of the negative saturation value."""


class SoftmaxAttrs(OpAttrs):
    """Softmax along ``dim`` (default: the channel/feature dimension 1)."""

    dim: int = 1
    """Dimension along which the softmax sums to 1 (0 is the batch)."""


class BatchNormAttrs(OpAttrs):
    """Batch normalisation over the channel dimension of a 2-D (N, C) or 4-D (N, C, H, W)
    input. ``momentum`` is torch's (weight of the new batch statistic)."""

    eps: PositiveFloat = 1e-5
    """Added to the variance for numerical stability."""
    momentum: float = Field(0.1, gt=0, le=1)
    """Weight of the new batch statistic in the running averages."""
    affine: bool = True
    """Learn a per-channel scale and shift."""
    track_running_stats: bool = True
    """Keep running mean/variance for evaluation mode."""


class DropoutAttrs(OpAttrs):
    """Dropout with drop probability ``p`` (train mode only)."""

    p: float = Field(0.5, ge=0, lt=1)
    """Probability of zeroing an element (training mode only)."""


class GaussianNoiseAttrs(OpAttrs):
    """Additive zero-mean Gaussian noise with standard deviation ``std`` (train mode only)."""

    std: float = Field(gt=0)
    """Standard deviation of the added noise (training mode only)."""


def _same(a, ins: list[TensorType]) -> list[TensorType]:
    return [ins[0]]



def _infer_softmax(a: SoftmaxAttrs, ins: list[TensorType]) -> list[TensorType]:
    x = ins[0]
    if not -x.rank <= a.dim < x.rank or a.dim % x.rank == 0:
        raise ShapeError(f"softmax dim {a.dim} is not a non-batch dimension of {x}")
    return [x]


def _infer_batch_norm(a: BatchNormAttrs, ins: list[TensorType]) -> list[TensorType]:
    x = ins[0]
    if x.rank not in (2, 4):
        raise ShapeError(f"batch_norm expects a 2-D or 4-D input, got {x.rank}-D {x}")
    return [x]


def _bn_params(a: BatchNormAttrs, ins: list[TensorType]) -> int:
    return 2 * int(ins[0].shape[1]) if a.affine else 0


def _bn_flops(a, ins: list[TensorType], outs: list[TensorType]) -> int:
    return 2 * outs[0].sample_numel


def _activation(name: str, doc: str, attrs=NoAttrs, flops=None) -> None:
    kwargs = {"flops": flops} if flops else {}
    register_op(OpDef(name, attrs, ("x",), ("y",), _same, doc=doc, **kwargs))


_activation("relu", "rectified linear unit")
_activation("leaky_relu", "leaky rectified linear unit", LeakyReluAttrs)
_activation("elu", "exponential linear unit", EluAttrs)
_activation("tanh", "hyperbolic tangent")
_activation("sigmoid", "logistic sigmoid")
_activation("identity", "passes its input through unchanged", flops=no_flops)
register_op(OpDef("softmax", SoftmaxAttrs, ("x",), ("y",), _infer_softmax,
                  doc="softmax along a dimension"))
register_op(OpDef("batch_norm", BatchNormAttrs, ("x",), ("y",), _infer_batch_norm,
                  params=_bn_params, flops=_bn_flops, doc="batch normalisation"))
register_op(OpDef("dropout", DropoutAttrs, ("x",), ("y",), _same, flops=no_flops,
                  doc="dropout (active in train mode only)"))
register_op(OpDef("gaussian_noise", GaussianNoiseAttrs, ("x",), ("y",), _same,
                  doc="additive Gaussian noise (active in train mode only)"))
