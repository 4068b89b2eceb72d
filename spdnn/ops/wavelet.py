"""Haar wavelet pooling and unpooling (seed 001 Tabs. A8/A9, after Yoo et al.'s WCT2).

Rules. With the orthonormal Haar filters L = [1, 1]/√2 and H = [-1, 1]/√2 and each 2x2 block

    a b
    c d

``haar_pool`` gives four half-size outputs, per channel (no parameters):

    ll = ( a + b + c + d) / 2      (approximation: goes on through the encoder)
    lh = (-a + b - c + d) / 2      (horizontal detail: a skip)
    hl = (-a - b + c + d) / 2      (vertical detail: a skip)
    hh = ( a - b - c + d) / 2      (diagonal detail: a skip)

``haar_unpool`` is the matching synthesis (the transpose of the orthonormal analysis):

    a = (ll - lh - hl + hh) / 2,  b = (ll + lh - hl - hh) / 2,
    c = (ll - lh + hl - hh) / 2,  d = (ll + lh + hl + hh) / 2,

so ``haar_unpool(*haar_pool(x)) == x`` (exactly for inputs whose sums are exact, e.g. dyadic
rationals; to rounding otherwise). Height and width must be even.
FLOPs: 4 per output element (3 additions and the scaling by 1/2).
"""

from __future__ import annotations

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, register_op, require_rank

__all__ = ["HaarPoolAttrs", "HaarUnpoolAttrs"]


class HaarPoolAttrs(OpAttrs):
    """Haar analysis of each channel; no attributes."""


class HaarUnpoolAttrs(OpAttrs):
    """Haar synthesis of each channel; no attributes."""


def _infer_pool(a: HaarPoolAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "haar_pool")
    n, c, h, w = x.shape
    if int(h) % 2 or int(w) % 2:
        raise ShapeError(f"haar_pool needs an even height and width, got {h}x{w}; pad the input first")
    return [TensorType((n, c, int(h) // 2, int(w) // 2))] * 4


def _infer_unpool(a: HaarUnpoolAttrs, ins: list[TensorType]) -> list[TensorType]:
    for t in ins:
        require_rank(t, 4, "haar_unpool")
    first = ins[0]
    for port, t in zip(("lh", "hl", "hh"), ins[1:]):
        if t.shape[1:] != first.shape[1:]:
            raise ShapeError(f"haar_unpool's {port} input {t} differs from its ll input {first}")
    n, c, h, w = first.shape
    return [TensorType((n, c, 2 * int(h), 2 * int(w)))]


def _four_per_output(a, ins: list[TensorType], outs: list[TensorType]) -> int:
    return 4 * sum(t.sample_numel for t in outs)


HAAR_POOL = register_op(OpDef(
    name="haar_pool", attrs=HaarPoolAttrs, inputs=("x",), outputs=("ll", "lh", "hl", "hh"),
    infer=_infer_pool, flops=_four_per_output,
    doc="Haar wavelet pooling: 2x2 analysis into ll (onward) and lh, hl, hh (skips) (seed 001)",
))

HAAR_UNPOOL = register_op(OpDef(
    name="haar_unpool", attrs=HaarUnpoolAttrs, inputs=("ll", "lh", "hl", "hh"), outputs=("y",),
    infer=_infer_unpool, flops=_four_per_output,
    doc="Haar wavelet unpooling: the exact inverse (synthesis) of haar_pool (seed 001)",
))
