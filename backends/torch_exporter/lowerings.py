"""Op -> torch module lowerings, keyed by op name.

Every registered op must either appear in ``LOWERINGS``, be one of ``BOUNDARY_OPS`` (handled
by the module itself) or be listed in ``UNSUPPORTED`` with a reason; a test enforces it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from spdnn.ir.graph import Node
from spdnn.ir.types import TensorType
from spdnn.ops.conv import resolve_conv_padding
from spdnn.ops.crop import crop_box
from spdnn.ops.tables import LoweringTable, UnsupportedTable

__all__ = ["LOWERINGS", "UNSUPPORTED", "BOUNDARY_OPS", "lower"]

Lowering = Callable[[Node, list[TensorType], list[TensorType]], nn.Module]
LOWERINGS: dict[str, Lowering] = LoweringTable("torch")  # also ops registered with torch=...
#: Ops without a torch lowering, with the reason (empty: every op is supported).
UNSUPPORTED: dict[str, str] = UnsupportedTable("torch")
#: Graph boundary ops; the generated module maps them to forward()'s arguments and results.
BOUNDARY_OPS = frozenset({"input", "output"})


def lowering(op: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn

    return register


def lower(node: Node, in_types: list[TensorType], out_types: list[TensorType]) -> nn.Module:
    """Build the torch module of one node."""
    return LOWERINGS[node.op](node, in_types, out_types)


# ---------------------------------------------------------------- helper modules
class Conv2d(nn.Conv2d):
    """nn.Conv2d that first applies an asymmetric zero padding (TF-style "same" with stride)."""

    def __init__(self, *args, pre_pad: tuple[int, int, int, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pre_pad = pre_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        return super().forward(x)


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (batch dimension kept)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Concat(nn.Module):
    """Concatenate inputs along ``dim``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Add(nn.Module):
    """Elementwise sum of the inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """Elementwise product of the inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Pad(nn.Module):
    """Spatial padding (left, right, top, bottom) with torch's constant/reflect/replicate."""

    def __init__(self, padding: tuple[int, int, int, int], mode: str, value: float):
        super().__init__()
        self.padding, self.mode, self.value = tuple(padding), mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.padding, mode="constant", value=self.value)
        return F.pad(x, self.padding, mode=self.mode)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, mode={self.mode!r}"


class Crop(nn.Module):
    """Keeps the window ``box`` = (top, left, bottom, right) of the spatial dimensions (the
    centre window of the ``crop`` op, computed from the input size at lowering)."""

    def __init__(self, box: tuple[int, int, int, int]):
        super().__init__()
        self.box = tuple(box)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, left, bottom, right = self.box
        return x[:, :, top:bottom, left:right]

    def extra_repr(self) -> str:
        return f"box={self.box}"


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in train mode; identity in eval mode."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class RepeatUnpool(nn.Module):
    """Value-repeating unpooling: each value fills a (fh, fw) block (nearest upsampling by an
    integer factor is exactly that)."""

    def __init__(self, factor: tuple[int, int]):
        super().__init__()
        self.factor = tuple(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="nearest")

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


# ---------------------------------------------------------------- lowerings
@lowering("conv2d")
def _conv2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    top, bottom, left, right = resolve_conv_padding(a, int(ins[0].shape[2]), int(ins[0].shape[3]))
    symmetric = top == bottom and left == right
    return Conv2d(
        int(ins[0].shape[1]), a.out_channels, a.kernel_size, stride=a.stride,
        padding=(top, left) if symmetric else 0, dilation=a.dilation, groups=a.groups,
        bias=a.bias, pre_pad=None if symmetric else (left, right, top, bottom),
    )


@lowering("conv_transpose2d")
def _conv_transpose2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    return nn.ConvTranspose2d(
        int(ins[0].shape[1]), a.out_channels, a.kernel_size, stride=a.stride, padding=a.padding,
        output_padding=a.output_padding, groups=a.groups, bias=a.bias, dilation=a.dilation,
    )


@lowering("linear")
def _linear(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    return nn.Linear(int(ins[0].shape[1]), node.attrs.out_features, bias=node.attrs.bias)


@lowering("batch_norm")
def _batch_norm(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    cls = nn.BatchNorm1d if ins[0].rank == 2 else nn.BatchNorm2d
    return cls(int(ins[0].shape[1]), eps=a.eps, momentum=a.momentum, affine=a.affine,
               track_running_stats=a.track_running_stats)


@lowering("max_pool2d")
def _max_pool2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    return nn.MaxPool2d(a.kernel_size, a.strides, a.padding, a.dilation,
                        return_indices=a.return_indices, ceil_mode=a.ceil_mode)


@lowering("avg_pool2d")
def _avg_pool2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    return nn.AvgPool2d(a.kernel_size, a.strides, a.padding, ceil_mode=a.ceil_mode,
                        count_include_pad=a.count_include_pad)


@lowering("max_unpool2d")
def _max_unpool2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    return nn.MaxUnpool2d(a.kernel_size, a.strides, a.padding)


@lowering("upsample")
def _upsample(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    size = tuple(int(d) for d in outs[0].shape[2:])
    return nn.Upsample(size=size, mode=a.mode,
                       align_corners=a.align_corners if a.mode == "bilinear" else None)


def _simple(op: str, factory: Callable[..., nn.Module]) -> None:
    LOWERINGS[op] = lambda node, ins, outs: factory(node.attrs, ins)


_simple("flatten", lambda a, ins: nn.Flatten(a.start_dim, a.end_dim))
_simple("reshape", lambda a, ins: Reshape(a.shape))
_simple("dropout", lambda a, ins: nn.Dropout(a.p))
_simple("gaussian_noise", lambda a, ins: GaussianNoise(a.std))
_simple("relu", lambda a, ins: nn.ReLU())
_simple("leaky_relu", lambda a, ins: nn.LeakyReLU(a.negative_slope))
_simple("elu", lambda a, ins: nn.ELU(a.alpha))
_simple("tanh", lambda a, ins: nn.Tanh())
_simple("sigmoid", lambda a, ins: nn.Sigmoid())
_simple("softmax", lambda a, ins: nn.Softmax(dim=a.dim))
_simple("identity", lambda a, ins: nn.Identity())
_simple("adaptive_avg_pool2d", lambda a, ins: nn.AdaptiveAvgPool2d(a.output_size))
_simple("repeat_unpool", lambda a, ins: RepeatUnpool(a.factor))
_simple("concat", lambda a, ins: Concat(a.axis % ins[0].rank))
_simple("crop", lambda a, ins: Crop(crop_box(a.size, int(ins[0].shape[2]), int(ins[0].shape[3]))))
_simple("add", lambda a, ins: Add())
_simple("mul", lambda a, ins: Mul())
_simple("pad", lambda a, ins: Pad(a.padding, "constant" if a.mode in ("zeros", "constant") else a.mode,
                                  a.value if a.mode == "constant" else 0.0))


from .building_blocks import LOWERINGS as _BUILDING_BLOCKS  # noqa: E402  (the papers' building blocks)

LOWERINGS.update(_BUILDING_BLOCKS)
