"""Op -> torch lowerings, keyed by op name.

A lowering returns either an ``nn.Module`` (layers with parameters or buffers, and layers whose
behaviour depends on ``training``) or a :class:`Call`: a stateless layer that ``forward`` calls as
a plain function (``relu1 = torch.relu(conv1)``), as hand-written code would, without the cost of
a module call.

Every registered op must either appear in ``LOWERINGS``, be one of ``BOUNDARY_OPS`` (handled
by the module itself) or be listed in ``UNSUPPORTED`` with a reason; a test enforces it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spdnn.ir.graph import Node
from spdnn.ir.types import TensorType
from spdnn.ops.conv import resolve_conv_padding
from spdnn.ops.crop import crop_box
from spdnn.ops.tables import LoweringTable, UnsupportedTable

__all__ = ["LOWERINGS", "UNSUPPORTED", "BOUNDARY_OPS", "Call", "lower"]


@dataclass(frozen=True)
class Call:
    """A stateless layer, emitted in ``forward`` as ``fn(*inputs, *args, **kwargs)``.

    ``fn`` must be a torch function or a module-level function (generated code refers to it by
    its qualified name); ``args``/``kwargs`` are constants. Callable like a module.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        return self.fn(*inputs, *self.args, **self.kwargs)


Lowered = nn.Module | Call
Lowering = Callable[[Node, list[TensorType], list[TensorType]], Lowered]
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


def lower(node: Node, in_types: list[TensorType], out_types: list[TensorType]) -> Lowered:
    """The torch module, or the function call, of one node."""
    return LOWERINGS[node.op](node, in_types, out_types)


# ---------------------------------------------------------------- helper modules and functions
class Conv2d(nn.Conv2d):
    """nn.Conv2d that first applies an asymmetric zero padding (TF-style "same" with stride)."""

    def __init__(self, *args, pre_pad: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.pre_pad = pre_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pre_pad))


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


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def reshape_samples(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Reshape each sample to ``shape`` (batch dimension kept)."""
    return x.reshape(x.shape[0], *shape)


def concat(*xs: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.cat(xs, dim=dim)


def add(*xs: torch.Tensor) -> torch.Tensor:
    """Elementwise sum of the inputs, left to right."""
    return reduce(operator.add, xs)


def mul(*xs: torch.Tensor) -> torch.Tensor:
    """Elementwise product of the inputs, left to right."""
    return reduce(operator.mul, xs)


def crop(x: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """The window ``box`` = (top, left, bottom, right) of the spatial dimensions."""
    top, left, bottom, right = box
    return x[:, :, top:bottom, left:right]


# ---------------------------------------------------------------- lowerings
@lowering("conv2d")
def _conv2d(node: Node, ins: list[TensorType], outs: list[TensorType]) -> nn.Module:
    a = node.attrs
    top, bottom, left, right = resolve_conv_padding(a, int(ins[0].shape[2]), int(ins[0].shape[3]))
    common = dict(stride=a.stride, dilation=a.dilation, groups=a.groups, bias=a.bias)
    if top == bottom and left == right:
        return nn.Conv2d(int(ins[0].shape[1]), a.out_channels, a.kernel_size, padding=(top, left), **common)
    return Conv2d(int(ins[0].shape[1]), a.out_channels, a.kernel_size, padding=0,
                  pre_pad=(left, right, top, bottom), **common)


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


@lowering("upsample")
def _upsample(node: Node, ins: list[TensorType], outs: list[TensorType]) -> Call:
    a = node.attrs
    size = tuple(int(d) for d in outs[0].shape[2:])
    return Call(F.interpolate, kwargs=dict(size=size, mode=a.mode,
                                           align_corners=a.align_corners if a.mode == "bilinear" else None))


def _simple(op: str, factory: Callable[..., Lowered]) -> None:
    LOWERINGS[op] = lambda node, ins, outs: factory(node.attrs, ins)


def _pad(a) -> Call:
    if a.mode in ("zeros", "constant"):
        return Call(F.pad, (tuple(a.padding),), dict(mode="constant", value=a.value if a.mode == "constant" else 0.0))
    return Call(F.pad, (tuple(a.padding),), dict(mode=a.mode))


_simple("max_pool2d", lambda a, ins: Call(F.max_pool2d, (a.kernel_size, a.strides, a.padding, a.dilation),
                                          dict(ceil_mode=a.ceil_mode, return_indices=a.return_indices)))
_simple("avg_pool2d", lambda a, ins: Call(F.avg_pool2d, (a.kernel_size, a.strides, a.padding),
                                          dict(ceil_mode=a.ceil_mode, count_include_pad=a.count_include_pad)))
_simple("max_unpool2d", lambda a, ins: Call(F.max_unpool2d, (a.kernel_size, a.strides, a.padding)))
_simple("flatten", lambda a, ins: Call(torch.flatten, (a.start_dim, a.end_dim)))
_simple("reshape", lambda a, ins: Call(reshape_samples, (tuple(a.shape),)))
_simple("dropout", lambda a, ins: nn.Dropout(a.p))
_simple("gaussian_noise", lambda a, ins: GaussianNoise(a.std))
_simple("relu", lambda a, ins: Call(torch.relu))
_simple("leaky_relu", lambda a, ins: Call(F.leaky_relu, (a.negative_slope,)))
_simple("elu", lambda a, ins: Call(F.elu, (a.alpha,)))
_simple("tanh", lambda a, ins: Call(torch.tanh))
_simple("sigmoid", lambda a, ins: Call(torch.sigmoid))
_simple("softmax", lambda a, ins: Call(torch.softmax, (a.dim,)))
_simple("identity", lambda a, ins: Call(identity))
_simple("adaptive_avg_pool2d", lambda a, ins: Call(F.adaptive_avg_pool2d, (a.output_size,)))
_simple("repeat_unpool", lambda a, ins: Call(F.interpolate, kwargs=dict(scale_factor=tuple(a.factor),
                                                                       mode="nearest")))
_simple("concat", lambda a, ins: Call(concat, kwargs=dict(dim=a.axis % ins[0].rank)))
_simple("crop", lambda a, ins: Call(crop, (crop_box(a.size, int(ins[0].shape[2]), int(ins[0].shape[3])),)))
_simple("add", lambda a, ins: Call(add))
_simple("mul", lambda a, ins: Call(mul))
_simple("pad", lambda a, ins: _pad(a))


from .building_blocks import LOWERINGS as _BUILDING_BLOCKS  # noqa: E402  (the papers' building blocks)

LOWERINGS.update(_BUILDING_BLOCKS)
