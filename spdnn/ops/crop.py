"""``crop``: centre cropping of the two spatial dimensions (U-Net's alignment of 'valid'-padded
branches whose sizes differ by a few pixels, Ronneberger et al. 2015, Fig. 1 "copy and crop")."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops.base import OpAttrs, OpDef, no_flops, register_op, require_rank

__all__ = ["CropAttrs", "crop_box"]


class CropAttrs(OpAttrs):
    """Keep the centre ``size`` = [height, width] window of each feature map. When the margin to
    remove is odd, the extra row (column) is removed at the bottom (right), as U-Net's crops."""

    size: tuple[PositiveInt, PositiveInt] = Field(min_length=2, max_length=2)
    """Height and width kept, at most the input's; the window is centred."""


def crop_box(size: tuple[int, int], height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) indices, ends excluded, of the centre ``size`` window of a
    ``height`` x ``width`` map."""
    h, w = size
    top, left = (height - h) // 2, (width - w) // 2
    return top, left, top + h, left + w


def _infer_crop(a: CropAttrs, ins: list[TensorType]) -> list[TensorType]:
    (x,) = ins
    require_rank(x, 4, "crop")
    n, c, h, w = x.shape
    if a.size[0] > int(h) or a.size[1] > int(w):
        raise ShapeError(f"crop to {a.size[0]}x{a.size[1]} is larger than the {h}x{w} input")
    return [TensorType((n, c, *a.size))]


register_op(OpDef("crop", CropAttrs, ("x",), ("y",), _infer_crop, flops=no_flops,
                  doc="centre crop of the spatial dimensions to a given size"))
