"""Per-sample convolutions: filters generated per sample (seed 000) or given as an input (seed 002).

* ``dynamic_conv2d`` (seed 000 §3.2, Fig. 2, L145-167): a trainable *filter repository* of
  ``repository_size`` (M) base filters b_j of shape (C, kh, kw), orthogonally initialised; a
  second input gives per-sample coefficients w (N, out_channels * M) or (N, out_channels, M);
  sample n's filter i is k_ni = Σ_j w_nij b_j. By linearity conv(x, Σ_j w_ij b_j) = Σ_j w_ij
  conv(x, b_j), so backends run one static convolution of x with the repository (M maps) and
  mix the maps per sample with a batched matrix product; the batch stays dynamic. Torch may
  instead synthesise the filters (K = W B, a small matmul) and run one grouped convolution over
  the batch folded into channels, when that costs fewer FLOPs (:func:`dynamic_formulation`);
  ONNX cannot export a group count equal to a dynamic batch, so it always uses linearity.
* ``sample_conv2d`` (seed 002: G(z) replaces layer l's filters): the filters are an input
  tensor (N, out, C, kh, kw), one filter set per sample.
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import NonNegPair, OpAttrs, OpDef, Pair, register_op, require_rank
from spdnn.ops.conv import conv_output_size

__all__ = ["DynamicConv2dAttrs", "SampleConv2dAttrs", "dynamic_formulation", "formulation_flops"]


class _WindowAttrs(OpAttrs):
    """Stride, padding and dilation of a per-sample convolution (as conv2d's)."""

    stride: Pair = (1, 1)
    """Stride: n or [height, width]."""
    padding: Literal["same", "valid"] | NonNegPair = (0, 0)
    """Zero padding: 'same' (output = ceil(input / stride)), 'valid' (none), n or [height, width]."""
    dilation: Pair = (1, 1)
    """Spacing between kernel taps: n or [height, width]."""


class DynamicConv2dAttrs(_WindowAttrs):
    """Convolution with per-sample filters mixed from a trainable filter repository."""

    out_channels: PositiveInt
    """Number of filters generated per sample (output channels)."""
    kernel_size: Pair
    """Kernel size of the base filters: n or [height, width]."""
    repository_size: PositiveInt | None = None
    """Number M of base filters in the repository; default out_channels (seed 000 L193-194)."""
    bias: bool = False
    """Add a learnable (static) bias per output channel; seed 000 ignores the bias (L147)."""

    @property
    def m(self) -> int:
        """The repository size, with the paper's default applied."""
        return self.repository_size or self.out_channels


class SampleConv2dAttrs(_WindowAttrs):
    """Convolution whose filters are the second input, one filter set per sample."""


def _spatial(x: TensorType, a: _WindowAttrs, kernel: tuple[int, int], what: str) -> tuple[int, int]:
    h, w = (int(d) for d in x.shape[2:])
    oh, ow = conv_output_size(a, kernel, h, w)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{what}: kernel {kernel[0]}x{kernel[1]} does not fit its {h}x{w} input "
                         f"(padding {a.padding}); output would be {oh}x{ow}")
    return oh, ow


def _infer_dynamic(a: DynamicConv2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    x, w = ins
    require_rank(x, 4, "dynamic_conv2d input x")
    require_rank(w, (2, 3), "dynamic_conv2d coefficients")
    want = (a.out_channels * a.m,) if w.rank == 2 else (a.out_channels, a.m)
    if w.sample_shape != want:
        raise ShapeError(f"dynamic_conv2d coefficients must be (N, {', '.join(map(str, want))}) "
                         f"(out_channels={a.out_channels} x repository_size={a.m}), got {w}")
    oh, ow = _spatial(x, a, a.kernel_size, "dynamic_conv2d")
    return [TensorType((x.shape[0], a.out_channels, oh, ow))]


def _dynamic_params(a: DynamicConv2dAttrs, ins: list[TensorType]) -> int:
    c = int(ins[0].shape[1])
    return a.m * c * a.kernel_size[0] * a.kernel_size[1] + (a.out_channels if a.bias else 0)


def formulation_flops(a: DynamicConv2dAttrs, in_channels: int, pixels: int) -> dict[str, int]:
    """FLOPs per sample of the two ways to compute the op, for ``pixels`` output pixels:

    * ``linearity``: a static conv of x with the M base filters (M maps), then an
      out_channels x M mixing per pixel;
    * ``grouped``: the per-sample filters K = W B (out_channels x M times M x C*kh*kw), then
      a conv of x with its own out_channels filters (the grouped-convolution trick).
    """
    taps = in_channels * a.kernel_size[0] * a.kernel_size[1]
    return {"linearity": 2 * pixels * (a.m * taps + a.out_channels * a.m),
            "grouped": 2 * (pixels * a.out_channels * taps + a.out_channels * a.m * taps)}


def dynamic_formulation(a: DynamicConv2dAttrs, in_channels: int, pixels: int) -> str:
    """The torch lowering's formulation, decided once from the static shapes: ``grouped`` when it
    costs fewer FLOPs than ``linearity`` (:func:`formulation_flops`), else ``linearity``. With
    M = out_channels this picks grouped while out_channels * taps / pixels (the filter synthesis
    per pixel) stays below out_channels (the mixing per pixel): few input channels or large maps."""
    flops = formulation_flops(a, in_channels, pixels)
    return "grouped" if flops["grouped"] < flops["linearity"] else "linearity"


def _dynamic_flops(a: DynamicConv2dAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    """The linearity form's cost (the ONNX lowering's): a static conv to M maps, then
    out_channels x M mixing per pixel (:func:`formulation_flops`)."""
    pixels = outs[0].sample_numel // a.out_channels
    return formulation_flops(a, int(ins[0].shape[1]), pixels)["linearity"]


def _infer_sample(a: SampleConv2dAttrs, ins: list[TensorType]) -> list[TensorType]:
    x, f = ins
    require_rank(x, 4, "sample_conv2d input x")
    require_rank(f, 5, "sample_conv2d filters")
    out, c, kh, kw = f.sample_shape
    if c != int(x.shape[1]):
        raise ShapeError(f"sample_conv2d filters (N, out, C, kh, kw) = {f} expect C={c} input channels, "
                         f"but x has {x.shape[1]}")
    oh, ow = _spatial(x, a, (kh, kw), "sample_conv2d")
    return [TensorType((x.shape[0], out, oh, ow))]


def _sample_flops(a: SampleConv2dAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    _, c, kh, kw = ins[1].sample_shape
    return 2 * outs[0].sample_numel * c * kh * kw


DYNAMIC_CONV2D = register_op(OpDef(
    name="dynamic_conv2d", attrs=DynamicConv2dAttrs, inputs=("x", "coefficients"), outputs=("y",),
    infer=_infer_dynamic, params=_dynamic_params, flops=_dynamic_flops,
    doc="convolution with per-sample filters Σ_j w_ij b_j from a trainable filter repository (seed 000)",
))

SAMPLE_CONV2D = register_op(OpDef(
    name="sample_conv2d", attrs=SampleConv2dAttrs, inputs=("x", "filters"), outputs=("y",),
    infer=_infer_sample, flops=_sample_flops,
    doc="convolution whose (N, out, C, kh, kw) filters are an input, one set per sample (seed 002)",
))
