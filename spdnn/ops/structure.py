"""Graph boundary and joining ops: input, output, concat, add, pad."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveInt, WithJsonSchema

from spdnn.errors import ShapeError
from spdnn.ir.types import BATCH, TensorType
from spdnn.ops.base import VARIADIC, OpAttrs, OpDef, no_flops, register_op, require_rank

__all__ = ["InputAttrs", "OutputAttrs", "ConcatAttrs", "AddAttrs", "MulAttrs", "PadAttrs"]


class InputAttrs(OpAttrs):
    """A graph input. ``shape`` excludes the batch dimension, e.g. [1, 28, 28]."""

    shape: tuple[PositiveInt, ...] = Field(min_length=1)
    """Shape of one sample, without the batch dimension, e.g. [1, 28, 28]."""


class OutputAttrs(OpAttrs):
    """A graph output: marks the value of its single input as a result of the network."""


class ConcatAttrs(OpAttrs):
    """Concatenate along ``axis`` (default 1: channels); other dimensions must agree."""

    axis: int = 1
    """Dimension to concatenate along (1: channels)."""


class AddAttrs(OpAttrs):
    """Elementwise sum of inputs of identical shape."""


class MulAttrs(OpAttrs):
    """Elementwise product of inputs of identical shape (gates, attention masks)."""


def _to_four(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * 4
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and len(value) == 2:
        return (value[1], value[1], value[0], value[0])  # (h, w) -> left, right, top, bottom
    return value


class PadAttrs(OpAttrs):
    """Pad the two spatial dimensions. ``padding`` is n (all sides), [h, w], or
    [left, right, top, bottom] (asymmetric allowed). Modes: zeros (or a constant ``value``),
    reflect, replicate."""

    padding: Annotated[
        tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt],
        BeforeValidator(_to_four),
        WithJsonSchema({"anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 4},
        ]}),
    ]
    """Padding: n (all sides), [height, width], or [left, right, top, bottom]."""
    mode: Literal["zeros", "constant", "reflect", "replicate"] = "zeros"
    """Padding mode: zeros, constant (with value), reflect or replicate."""
    value: float = 0.0
    """Fill value of mode 'constant'."""


def _infer_input(a: InputAttrs, ins: list[TensorType]) -> list[TensorType]:
    return [TensorType((BATCH, *a.shape))]


def _infer_output(a: OutputAttrs, ins: list[TensorType]) -> list[TensorType]:
    return []


def _infer_concat(a: ConcatAttrs, ins: list[TensorType]) -> list[TensorType]:
    first = ins[0]
    axis = a.axis % first.rank if -first.rank <= a.axis < first.rank else None
    if axis is None or axis == 0:
        raise ShapeError(f"concat axis {a.axis} is not a non-batch dimension of {first}")
    total = 0
    for i, t in enumerate(ins):
        if t.rank != first.rank or any(
            d != e for k, (d, e) in enumerate(zip(t.shape, first.shape)) if k != axis
        ):
            raise ShapeError(
                f"input {i} has shape {t}, which differs from input 0's {first} outside axis {axis}"
            )
        total += int(t.shape[axis])
    shape = list(first.shape)
    shape[axis] = total
    return [TensorType(tuple(shape))]


def _infer_elementwise(what: str):
    def infer(a, ins: list[TensorType]) -> list[TensorType]:
        for i, t in enumerate(ins[1:], start=1):
            if t.shape != ins[0].shape:
                raise ShapeError(f"input {i} has shape {t}, input 0 has {ins[0]}; {what} needs equal shapes")
        return [ins[0]]

    return infer


def _add_flops(a, ins: list[TensorType], outs: list[TensorType]) -> int:
    return outs[0].sample_numel * (len(ins) - 1)


def _infer_pad(a: PadAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "pad")
    n, c, h, w = x.shape
    left, right, top, bottom = a.padding
    if a.mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise ShapeError(f"reflection padding {list(a.padding)} must be smaller than the {h}x{w} input")
    return [TensorType((n, c, int(h) + top + bottom, int(w) + left + right))]



register_op(OpDef("input", InputAttrs, (), ("y",), _infer_input, flops=no_flops,
                  doc="graph input (shape without the batch dimension)"))
register_op(OpDef("output", OutputAttrs, ("x",), (), _infer_output, flops=no_flops,
                  doc="graph output"))
register_op(OpDef("concat", ConcatAttrs, (VARIADIC,), ("y",), _infer_concat, flops=no_flops,
                  doc="concatenate inputs along an axis (default channels)"))
register_op(OpDef("add", AddAttrs, (VARIADIC,), ("y",), _infer_elementwise("add"), flops=_add_flops,
                  doc="elementwise sum of equally shaped inputs"))
register_op(OpDef("mul", MulAttrs, (VARIADIC,), ("y",), _infer_elementwise("mul"), flops=_add_flops,
                  doc="elementwise product of equally shaped inputs"))
register_op(OpDef("pad", PadAttrs, ("x",), ("y",), _infer_pad, flops=no_flops,
                  doc="zero/constant, reflection or replication padding (asymmetric allowed)"))
