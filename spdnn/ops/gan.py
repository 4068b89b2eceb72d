"""GAN and style-transfer building blocks: minibatch discrimination, code repeat, WCT.

* ``minibatch_discrimination`` (Salimans et al. 2016; thesis App. H, CIFAR discriminator, TH-H5):
  x (N, A) is projected by a trainable tensor T (A, B·D) to M (N, B, D); for each kernel b,
  o(x_i)_b = Σ_j exp(-‖M_ib - M_jb‖₁) over the whole batch (j = i included, adding 1); the
  output is [x, o] of shape (N, A + B). The output of a sample depends on the batch it is in.
  FLOPs count the projection (2·A·B·D per sample); the pairwise term (≈ 3·B·D per pair) grows
  with the batch and is not counted.
* ``repeat_code`` (conditioning codes, thesis Apps. G-I): tile a code (N, K) to (N, K, H, W),
  every pixel a copy (data movement: no FLOPs).
* ``wct`` (whitening and colouring transform, seed 001 style transfer, Li et al. 2017): per
  sample, content features f_c (C, H·W) are centred and whitened, E_c D_c^{-1/2} E_cᵀ f_c, then
  coloured with the style covariance, E_s D_s^{1/2} E_sᵀ, and the style mean is added; the
  result is alpha·f_cs + (1 - alpha)·f_c. ``eps`` is added to the covariances' diagonals.
  Needs an eigendecomposition: torch only (ONNX export is refused with an error naming the op).
  FLOPs: the covariances and the two C x C transforms (2·C²·H·W each, 4 in all); the
  eigendecompositions are not counted.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, Pair, no_flops, register_op, require_rank

__all__ = ["MinibatchDiscriminationAttrs", "RepeatCodeAttrs", "WctAttrs"]


class MinibatchDiscriminationAttrs(OpAttrs):
    """Minibatch discrimination features appended to an (N, A) input."""

    num_kernels: PositiveInt
    """Number B of minibatch kernels (features appended to the input)."""
    kernel_dim: PositiveInt
    """Dimension D of each kernel's projection."""


class RepeatCodeAttrs(OpAttrs):
    """Tile an (N, K) code over a spatial grid."""

    size: Pair
    """Spatial size [height, width] (or n for n x n) of the tiled output."""


class WctAttrs(OpAttrs):
    """Whitening-and-colouring transform of content features by style features."""

    alpha: float = Field(default=1.0, ge=0.0, le=1.0)
    """Blend: alpha·transformed + (1 - alpha)·content; 1 is the full transform."""
    eps: PositiveFloat = 1e-5
    """Added to the diagonal of both covariances before their eigendecomposition."""


def _infer_mbd(a: MinibatchDiscriminationAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    if x.rank != 2:
        raise ShapeError(f"minibatch_discrimination expects an (N, features) input but gets {x}; "
                         "put a flatten layer before it")
    return [TensorType((x.shape[0], int(x.shape[1]) + a.num_kernels))]


def _mbd_params(a: MinibatchDiscriminationAttrs, ins: list[TensorType]) -> int:
    return int(ins[0].shape[1]) * a.num_kernels * a.kernel_dim


def _mbd_flops(a: MinibatchDiscriminationAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    return 2 * _mbd_params(a, ins)


def _infer_repeat(a: RepeatCodeAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    if x.rank != 2:
        raise ShapeError(f"repeat_code expects an (N, K) code but gets {x}")
    return [TensorType((x.shape[0], x.shape[1], *a.size))]


def _infer_wct(a: WctAttrs, ins: list[TensorType]) -> list[TensorType]:
    content, style = ins
    require_rank(content, 4, "wct content")
    require_rank(style, 4, "wct style")
    if content.shape[1] != style.shape[1]:
        raise ShapeError(f"wct content {content} and style {style} need the same number of channels")
    for name, t in (("content", content), ("style", style)):
        if t.shape[2] * t.shape[3] < 2:
            raise ShapeError(f"wct {name} {t} needs at least 2 pixels to estimate a covariance")
    return [content]


def _wct_flops(a: WctAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    c = int(ins[0].shape[1])
    hw_c = ins[0].sample_numel // c
    hw_s = ins[1].sample_numel // c
    return 2 * c * c * (hw_c + hw_s) + 4 * c * c * hw_c


MINIBATCH_DISCRIMINATION = register_op(OpDef(
    name="minibatch_discrimination", attrs=MinibatchDiscriminationAttrs, inputs=("x",), outputs=("y",),
    infer=_infer_mbd, params=_mbd_params, flops=_mbd_flops,
    doc="appends minibatch-discrimination features (Salimans et al.) to an (N, A) input (thesis App. H)",
))

REPEAT_CODE = register_op(OpDef(
    name="repeat_code", attrs=RepeatCodeAttrs, inputs=("x",), outputs=("y",),
    infer=_infer_repeat, flops=no_flops,
    doc="tiles an (N, K) conditioning code to (N, K, H, W)",
))

WCT = register_op(OpDef(
    name="wct", attrs=WctAttrs, inputs=("content", "style"), outputs=("y",),
    infer=_infer_wct, flops=_wct_flops,
    doc="whitening-and-colouring transform of content features by style features (seed 001; torch only)",
))
