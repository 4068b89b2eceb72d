"""Convolutions: conv2d and conv_transpose2d (NCHW)."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeInt, PositiveInt, model_validator

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import NonNegPair, OpAttrs, OpDef, Pair, register_op, require_rank

__all__ = ["Conv2dAttrs", "ConvTranspose2dAttrs", "conv_output_size", "resolve_conv_padding"]


class _ConvAttrs(OpAttrs):
    """Attributes shared by conv2d and conv_transpose2d."""

    out_channels: PositiveInt
    """Number of output channels (filters)."""
    kernel_size: Pair
    """Kernel size: n or [height, width]."""
    stride: Pair = (1, 1)
    """Stride: n or [height, width]."""
    dilation: Pair = (1, 1)
    """Spacing between kernel taps: n or [height, width]."""
    groups: PositiveInt = 1
    """Blocked connections from input to output channels; divides both channel counts."""
    bias: bool = True
    """Add a learnable bias per output channel."""
    in_channels: PositiveInt | None = None
    """Input channels; inferred from the input, checked when given."""

    @model_validator(mode="after")
    def _groups_divide_out(self) -> _ConvAttrs:
        if self.out_channels % self.groups:
            raise ValueError(
                f"out_channels ({self.out_channels}) must be divisible by groups ({self.groups})"
            )
        return self


class Conv2dAttrs(_ConvAttrs):
    """Attributes of conv2d.

    ``padding`` is "valid" (0), "same" (output = ceil(input / stride), extra pixel on the
    bottom/right when the total is odd, as TensorFlow/Lasagne do), an int or an (h, w) pair.
    ``in_channels`` is inferred; when given it is checked against the input.
    """

    padding: Literal["same", "valid"] | NonNegPair = (0, 0)
    """Zero padding: 'same' (output = ceil(input / stride)), 'valid' (none), n or [height, width]."""


class ConvTranspose2dAttrs(_ConvAttrs):
    """Attributes of conv_transpose2d: output = (in-1)*stride - 2*padding + dilation*(k-1)
    + output_padding + 1."""

    padding: NonNegPair = (0, 0)
    """Implicit zero padding removed from the output: n or [height, width]."""
    output_padding: NonNegPair = (0, 0)
    """Extra rows/columns added on one side of the output: n or [height, width]; smaller than stride or dilation."""

    @model_validator(mode="after")
    def _output_padding_fits(self) -> ConvTranspose2dAttrs:
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op >= max(s, d):
                raise ValueError("output_padding must be smaller than stride or dilation")
        return self


def resolve_conv_padding(
    attrs: Conv2dAttrs, height: int, width: int, kernel_size: tuple[int, int] | None = None
) -> tuple[int, int, int, int]:
    """Explicit (top, bottom, left, right) padding of a conv2d for a given input size.

    ``attrs`` needs ``padding``, ``stride`` and ``dilation``; ``kernel_size`` defaults to
    ``attrs.kernel_size`` (per-sample convolutions take it from their filter input)."""
    if attrs.padding == "valid":
        return (0, 0, 0, 0)
    if attrs.padding == "same":
        pads = []
        for size, k, s, d in zip(
            (height, width), kernel_size or attrs.kernel_size, attrs.stride, attrs.dilation, strict=True
        ):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return (pads[0], pads[1], pads[2], pads[3])
    ph, pw = attrs.padding
    return (ph, ph, pw, pw)


def conv_output_size(attrs, kernel_size: tuple[int, int], height: int, width: int) -> tuple[int, int]:
    """(out_height, out_width) of a convolution with ``attrs``' padding, stride and dilation."""
    top, bottom, left, right = resolve_conv_padding(attrs, height, width, kernel_size)
    return (_conv_out(height, kernel_size[0], attrs.stride[0], attrs.dilation[0], top, bottom),
            _conv_out(width, kernel_size[1], attrs.stride[1], attrs.dilation[1], left, right))


def _check_in_channels(declared: NonNegativeInt | None, actual: int, groups: int) -> None:
    if declared is not None and declared != actual:
        raise ShapeError(f"declares in_channels={declared} but its input has {actual} channels")
    if actual % groups:
        raise ShapeError(f"input channels ({actual}) are not divisible by groups ({groups})")


def _conv_out(size: int, k: int, s: int, d: int, before: int, after: int) -> int:
    return (size + before + after - d * (k - 1) - 1) // s + 1


def _infer_conv2d(a: Conv2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "conv2d")
    n, c, h, w = x.shape
    _check_in_channels(a.in_channels, int(c), a.groups)
    oh, ow = conv_output_size(a, a.kernel_size, int(h), int(w))
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"kernel {a.kernel_size[0]}x{a.kernel_size[1]} does not fit its {h}x{w} input "
            f"(padding {a.padding}); output would be {oh}x{ow}"
        )
    return [TensorType((n, a.out_channels, oh, ow))]


def _conv_params(a: Conv2dAttrs | ConvTranspose2dAttrs, ins: list[TensorType]) -> int:
    cin = int(ins[0].shape[1])
    weights = a.out_channels * (cin // a.groups) * a.kernel_size[0] * a.kernel_size[1]
    return weights + (a.out_channels if a.bias else 0)


def _conv2d_flops(a: Conv2dAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    cin = int(ins[0].shape[1])
    macs = outs[0].sample_numel * (cin // a.groups) * a.kernel_size[0] * a.kernel_size[1]
    return 2 * macs


def _infer_conv_transpose2d(a: ConvTranspose2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "conv_transpose2d")
    n, c, h, w = x.shape
    _check_in_channels(a.in_channels, int(c), a.groups)
    out = []
    for size, k, s, p, op, d in zip(
        (int(h), int(w)), a.kernel_size, a.stride, a.padding, a.output_padding, a.dilation,
        strict=True,
    ):
        out.append((size - 1) * s - 2 * p + d * (k - 1) + op + 1)
    if min(out) < 1:
        raise ShapeError(f"padding {a.padding} is too large for its {h}x{w} input")
    return [TensorType((n, a.out_channels, out[0], out[1]))]


def _conv_transpose2d_flops(
    a: ConvTranspose2dAttrs, ins: list[TensorType], outs: list[TensorType]
) -> int:
    cout_per_group = a.out_channels // a.groups
    return 2 * ins[0].sample_numel * cout_per_group * a.kernel_size[0] * a.kernel_size[1]


CONV2D = register_op(
    OpDef(
        name="conv2d",
        attrs=Conv2dAttrs,
        inputs=("x",),
        outputs=("y",),
        infer=_infer_conv2d,
        params=_conv_params,
        flops=_conv2d_flops,
        doc="2-D convolution over an (N, C, H, W) input",
    )
)

CONV_TRANSPOSE2D = register_op(
    OpDef(
        name="conv_transpose2d",
        attrs=ConvTranspose2dAttrs,
        inputs=("x",),
        outputs=("y",),
        infer=_infer_conv_transpose2d,
        params=_conv_params,
        flops=_conv_transpose2d_flops,
        doc="2-D transposed convolution ('deconvolution')",
    )
)
