"""Fully connected layer and the reshaping ops around it: linear, flatten, reshape."""

from __future__ import annotations

from math import prod

from pydantic import PositiveInt, field_validator

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, no_flops, register_op, require_rank

__all__ = ["LinearAttrs", "FlattenAttrs", "ReshapeAttrs"]


class LinearAttrs(OpAttrs):
    """Fully connected layer over an (N, features) input; ``in_features`` is inferred and,
    when given, checked."""

    out_features: PositiveInt
    """Number of output features."""
    bias: bool = True
    """Add a learnable bias per output feature."""
    in_features: PositiveInt | None = None
    """Input features; inferred from the input, checked when given."""


class FlattenAttrs(OpAttrs):
    """Flatten dimensions ``start_dim..end_dim`` (batch is dimension 0)."""

    start_dim: int = 1
    """First dimension to flatten (0 is the batch)."""
    end_dim: int = -1
    """Last dimension to flatten (-1: the last)."""


class ReshapeAttrs(OpAttrs):
    """Reshape each sample; ``shape`` excludes the batch dimension and may hold one -1."""

    shape: tuple[int, ...]
    """Target shape of each sample, without the batch dimension; one entry may be -1."""

    @field_validator("shape")
    @classmethod
    def _valid(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape:
            raise ValueError("shape must have at least one dimension")
        if sum(d == -1 for d in shape) > 1:
            raise ValueError("at most one dimension may be -1")
        if any(d == 0 or d < -1 for d in shape):
            raise ValueError("dimensions must be positive (or a single -1)")
        return shape


def _infer_linear(a: LinearAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    if x.rank != 2:
        raise ShapeError(
            f"linear expects an (N, features) input but gets {x}; put a flatten layer before it"
        )
    if a.in_features is not None and a.in_features != x.shape[1]:
        raise ShapeError(f"declares in_features={a.in_features} but its input has {x.shape[1]}")
    return [TensorType((x.shape[0], a.out_features))]


def _linear_params(a: LinearAttrs, ins: list[TensorType]) -> int:
    return int(ins[0].shape[1]) * a.out_features + (a.out_features if a.bias else 0)


def _linear_flops(a: LinearAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    return 2 * int(ins[0].shape[1]) * a.out_features


def _infer_flatten(a: FlattenAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    start = a.start_dim % x.rank if a.start_dim < 0 else a.start_dim
    end = a.end_dim % x.rank if a.end_dim < 0 else a.end_dim
    if start == 0 or not (start <= end < x.rank):
        raise ShapeError(
            f"cannot flatten dims {a.start_dim}..{a.end_dim} of a {x.rank}-D input "
            "(the batch dimension 0 stays)"
        )
    merged = prod(int(d) for d in x.shape[start : end + 1])
    return [TensorType((*x.shape[:start], merged, *x.shape[end + 1 :]))]


def _infer_reshape(a: ReshapeAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, tuple(range(2, 9)), "reshape")
    numel = x.sample_numel
    known = prod(d for d in a.shape if d != -1)
    if -1 in a.shape:
        if numel % known:
            raise ShapeError(
                f"cannot reshape {x} (sample size {numel}) to {list(a.shape)}: "
                f"{numel} is not divisible by {known}"
            )
        shape = tuple(numel // known if d == -1 else d for d in a.shape)
    else:
        if known != numel:
            raise ShapeError(
                f"cannot reshape {x} (sample size {numel}) to {list(a.shape)} (size {known})"
            )
        shape = a.shape
    return [TensorType((x.shape[0], *shape))]



register_op(OpDef("linear", LinearAttrs, ("x",), ("y",), _infer_linear, params=_linear_params,
                  flops=_linear_flops, doc="fully connected layer"))
register_op(OpDef("flatten", FlattenAttrs, ("x",), ("y",), _infer_flatten, flops=no_flops,
                  doc="flatten all but the batch dimension"))
register_op(OpDef("reshape", ReshapeAttrs, ("x",), ("y",), _infer_reshape, flops=no_flops,
                  doc="reshape each sample (shape excludes the batch dimension)"))
