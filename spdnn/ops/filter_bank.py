"""Fixed Laplacian-of-Gaussian filter bank (seed 004, Table 1 layer 6, Eq. 5, L94-98, L145-152).

Rules. For each σ in ``sigmas`` the kernel has size k = ⌈8σ⌉, plus 1 when even (σ = 0.8, 1.6,
3.2 give 7, 13, 27), centred coefficients

    σ²∇²g(x, y) = -(2 - (x² + y²)/σ²) · g(x, y),   g(x, y) = exp(-(x² + y²)/(2σ²)) / (2πσ²)

(the normalised LoG), zero padding k // 2 (output size = input size), zero bias. Every input
channel is filtered by every σ on its own (depthwise): output channel s·C + c is σ_s applied to
input channel c. The kernels are constants (buffers, not parameters): nothing trains them,
gradients only pass through. FLOPs: 2·C·H·W·Σ_s k_s².
"""

from __future__ import annotations

import math

from pydantic import Field, PositiveFloat

from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, register_op, require_rank

__all__ = ["LogFilterBankAttrs", "log_kernel", "log_kernel_size"]


class LogFilterBankAttrs(OpAttrs):
    """Non-trainable Laplacian-of-Gaussian kernels, one per σ, applied to every channel."""

    sigmas: tuple[PositiveFloat, ...] = Field(default=(0.8, 1.6, 3.2), min_length=1, max_length=16)
    """Scales σ of the LoG kernels; seed 004 uses [0.8, 1.6, 3.2] (kernels 7, 13, 27)."""


def log_kernel_size(sigma: float) -> int:
    """⌈8σ⌉, made odd by adding 1 (seed 004 L152)."""
    k = math.ceil(8 * sigma)
    return k + 1 if k % 2 == 0 else k


def log_kernel(sigma: float) -> list[list[float]]:
    """The k x k normalised LoG kernel of Eq. 5, centred."""
    k = log_kernel_size(sigma)
    r = k // 2
    rows = []
    for y in range(-r, r + 1):
        row = []
        for x in range(-r, r + 1):
            d2 = (x * x + y * y) / (sigma * sigma)
            g = math.exp(-d2 / 2) / (2 * math.pi * sigma * sigma)
            row.append(-(2 - d2) * g)
        rows.append(row)
    return rows


def _infer(a: LogFilterBankAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "log_filter_bank")
    n, c, h, w = x.shape
    return [TensorType((n, len(a.sigmas) * int(c), h, w))]


def _flops(a: LogFilterBankAttrs, ins: list[TensorType], outs: list[TensorType]) -> int:
    return 2 * ins[0].sample_numel * sum(log_kernel_size(s) ** 2 for s in a.sigmas)


LOG_FILTER_BANK = register_op(OpDef(
    name="log_filter_bank", attrs=LogFilterBankAttrs, inputs=("x",), outputs=("y",),
    infer=_infer, flops=_flops,
    doc="fixed (non-trainable) Laplacian-of-Gaussian filters per channel, zero bias (seed 004)",
))
