"""Pooling and unpooling: max/avg/adaptive pooling, index unpooling, repeat-value unpooling,
and upsampling."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import NonNegPair, OpAttrs, OpDef, Pair, no_flops, register_op, require_rank

__all__ = [
    "MaxPool2dAttrs",
    "AvgPool2dAttrs",
    "AdaptiveAvgPool2dAttrs",
    "MaxUnpool2dAttrs",
    "RepeatUnpoolAttrs",
    "UpsampleAttrs",
]


class _PoolAttrs(OpAttrs):
    kernel_size: Pair
    """Pooling window: n or [height, width]."""
    stride: Pair | None = None
    """Stride: n or [height, width] (default: the kernel size)."""
    padding: NonNegPair = (0, 0)
    """Implicit padding on every side: n or [height, width]; at most half the kernel."""
    ceil_mode: bool = False
    """Round the output size up instead of down."""

    @property
    def strides(self) -> tuple[int, int]:
        return self.stride or self.kernel_size

    @model_validator(mode="after")
    def _pad_at_most_half_kernel(self) -> _PoolAttrs:
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError("padding must be at most half the kernel size")
        return self


class MaxPool2dAttrs(_PoolAttrs):
    """Max pooling; ``return_indices: true`` adds a second output port ``indices``
    (for max_unpool2d, SegNet's sparse unpooling)."""

    dilation: Pair = (1, 1)
    """Spacing between window taps: n or [height, width]."""
    return_indices: bool = False
    """Add a second output port 'indices' (for max_unpool2d)."""


class AvgPool2dAttrs(_PoolAttrs):
    """Average pooling; padded zeros are counted in the average (``count_include_pad``)."""

    count_include_pad: bool = True
    """Count padded zeros in the average."""


class AdaptiveAvgPool2dAttrs(OpAttrs):
    """Average pooling to a fixed output size."""

    output_size: Pair
    """Output size: n or [height, width]."""


class MaxUnpool2dAttrs(OpAttrs):
    """Sparse unpooling with the indices of a max_pool2d (thesis Ch. 2, Fig. 2.8)."""

    kernel_size: Pair
    """Pooling window: n or [height, width]."""
    stride: Pair | None = None
    """Stride of the pooling being undone: n or [height, width] (default: the kernel size)."""
    padding: NonNegPair = (0, 0)
    """Implicit padding on every side: n or [height, width]; at most half the kernel."""

    @property
    def strides(self) -> tuple[int, int]:
        return self.stride or self.kernel_size


class RepeatUnpoolAttrs(OpAttrs):
    """Value-repeating unpooling: each value is copied into a k x k block
    (thesis Ch. 2 Fig. 2.7; App. B Fig. 3)."""

    factor: Pair
    """Copies of each value along height and width: n or [height, width]."""


class UpsampleAttrs(OpAttrs):
    """Interpolating upsampling by an integer scale factor (or to a fixed size)."""

    mode: Literal["nearest", "bilinear"] = "nearest"
    """Interpolation: 'nearest' or 'bilinear'."""
    scale_factor: Pair | None = None
    """Integer scale: n or [height, width] (give this or size)."""
    size: Pair | None = None
    """Output size: n or [height, width] (give this or scale_factor)."""
    align_corners: bool = False
    """Bilinear only: align the corner pixels of input and output."""

    @model_validator(mode="after")
    def _one_of(self) -> UpsampleAttrs:
        if (self.scale_factor is None) == (self.size is None):
            raise ValueError("give exactly one of scale_factor or size")
        if self.align_corners and self.mode == "nearest":
            raise ValueError("align_corners applies to bilinear mode only")
        return self


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window must start inside the input or left padding
    return out


def _infer_pool(a: _PoolAttrs, x: TensorType, what: str, dilation=(1, 1)) -> TensorType:
    require_rank(x, 4, what)
    n, c, h, w = x.shape
    out = [
        _pool_out(int(size), k, s, p, d, a.ceil_mode)
        for size, k, s, p, d in zip(
            (h, w), a.kernel_size, a.strides, a.padding, dilation, strict=True
        )
    ]
    if min(out) < 1:
        raise ShapeError(f"{a.kernel_size[0]}x{a.kernel_size[1]} pooling does not fit its {h}x{w} input")
    return TensorType((n, c, out[0], out[1]))


def _infer_max_pool2d(a: MaxPool2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    y = _infer_pool(a, ins[0], "max_pool2d", a.dilation)
    return [y, TensorType(y.shape, "int64")] if a.return_indices else [y]


def _infer_avg_pool2d(a: AvgPool2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    return [_infer_pool(a, ins[0], "avg_pool2d")]


def _window_flops(a, ins: list[TensorType], outs: list[TensorType]) -> int:
    return outs[0].sample_numel * a.kernel_size[0] * a.kernel_size[1]


def _infer_adaptive(a: AdaptiveAvgPool2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "adaptive_avg_pool2d")
    n, c, _, _ = x.shape
    return [TensorType((n, c, *a.output_size))]


def _adaptive_flops(a, ins: list[TensorType], outs: list[TensorType]) -> int:
    return ins[0].sample_numel


def _infer_max_unpool2d(a: MaxUnpool2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    x, idx = ins
    require_rank(x, 4, "max_unpool2d")
    if idx.dtype != "int64":
        raise ShapeError("max_unpool2d's second input must be the indices output of a max_pool2d")
    if idx.shape != x.shape:
        raise ShapeError(f"indices shape {idx} differs from the input shape {x}")
    n, c, h, w = x.shape
    out = [
        (int(size) - 1) * s - 2 * p + k
        for size, k, s, p in zip((h, w), a.kernel_size, a.strides, a.padding, strict=True)
    ]
    return [TensorType((n, c, out[0], out[1]))]


def _infer_repeat_unpool(a: RepeatUnpoolAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "repeat_unpool")
    n, c, h, w = x.shape
    return [TensorType((n, c, int(h) * a.factor[0], int(w) * a.factor[1]))]


def _infer_upsample(a: UpsampleAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "upsample")
    n, c, h, w = x.shape
    size = a.size or (int(h) * a.scale_factor[0], int(w) * a.scale_factor[1])
    return [TensorType((n, c, *size))]


def _upsample_flops(a: UpsampleAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    return outs[0].sample_numel * (4 if a.mode == "bilinear" else 0)



register_op(OpDef("max_pool2d", MaxPool2dAttrs, ("x",), ("y", "indices"), _infer_max_pool2d,
                  flops=_window_flops, doc="max pooling (optionally returning indices)",
                  active_outputs=lambda a: 2 if a.return_indices else 1))
register_op(OpDef("avg_pool2d", AvgPool2dAttrs, ("x",), ("y",), _infer_avg_pool2d,
                  flops=_window_flops, doc="average pooling"))
register_op(OpDef("adaptive_avg_pool2d", AdaptiveAvgPool2dAttrs, ("x",), ("y",),
                  _infer_adaptive, flops=_adaptive_flops,
                  doc="average pooling to a fixed output size"))
register_op(OpDef("max_unpool2d", MaxUnpool2dAttrs, ("x", "indices"), ("y",),
                  _infer_max_unpool2d, flops=no_flops,
                  doc="sparse unpooling with max_pool2d indices (SegNet)"))
register_op(OpDef("repeat_unpool", RepeatUnpoolAttrs, ("x",), ("y",), _infer_repeat_unpool,
                  flops=no_flops, doc="value-repeating unpooling (each value fills a k x k block)"))
register_op(OpDef("upsample", UpsampleAttrs, ("x",), ("y",), _infer_upsample,
                  flops=_upsample_flops, doc="nearest or bilinear upsampling"))
