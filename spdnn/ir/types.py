"""Tensor types of the IR: a dtype and a shape whose first dimension may be symbolic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import prod

__all__ = ["BATCH", "Dim", "Shape", "TensorType", "format_shape"]

#: The symbolic batch dimension. Every graph input has it as dimension 0.
BATCH = "N"

Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class TensorType:
    """Type of one value flowing along an edge.

    Attributes:
        shape: dimensions; ``"N"`` marks the symbolic batch dimension.
        dtype: element type name (``float32`` for activations, ``int64`` for pooling indices).
    """

    shape: Shape
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @cached_property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape without the batch dimension (all static ints; computed once)."""
        return tuple(int(d) for d in self.shape[1:])

    @property
    def sample_numel(self) -> int:
        """Number of elements per sample (batch dimension excluded)."""
        return prod(self.sample_shape)

    def __str__(self) -> str:
        return format_shape(self.shape) + ("" if self.dtype == "float32" else f" {self.dtype}")


def format_shape(shape: Shape) -> str:
    """Format a shape as ``(N, 1, 28, 28)``."""
    return "(" + ", ".join(str(d) for d in shape) + ")"
