"""Op -> ONNX nodes, keyed by op name (written from the IR, not traced from torch).

Each emitter gets an :class:`Emit` context and returns nothing; it appends nodes and
initializers through the context. Initializer names follow the torch state dict
(``conv1.weight``), node names the IR (``conv1``), so a model reads the same in Netron.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from onnx import NodeProto, helper

from spdnn.errors import ExportError
from spdnn.ir.graph import Node
from spdnn.ir.types import TensorType
from spdnn.ops.conv import resolve_conv_padding
from spdnn.ops.crop import crop_box
from spdnn.ops.tables import LoweringTable, UnsupportedTable

__all__ = ["EMITTERS", "UNSUPPORTED", "Emit"]


@dataclass
class Emit:
    """What an emitter sees and writes."""

    node: Node
    inputs: list[str]
    outputs: list[str]
    in_types: list[TensorType]
    out_types: list[TensorType]
    weights: dict[str, np.ndarray]
    nodes: list[NodeProto] = field(default_factory=list)
    #: (name, array) pairs; the exporter writes them into the graph
    initializers: list[tuple[str, np.ndarray]] = field(default_factory=list)
    #: the initializers that are the node's parameters (added by :meth:`weight`)
    weight_names: list[str] = field(default_factory=list)

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | None = None, suffix: str = "",
           **attrs) -> str:
        """Append an ONNX node; returns its first output name."""
        outputs = outputs or [f"{self.node.name}{suffix or '_' + op_type.lower()}"]
        name = self.node.name + suffix
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def weight(self, key: str, transpose: bool = False) -> str:
        """Add the node's parameter ``key`` (``weight``, ``bias``, ``running_mean``...), a 2-D
        one transposed when asked."""
        name = f"{self.node.name}.{key}"
        array = self.weights.get(name)
        if array is None:
            array = spectrally_normalised(self.weights, self.node.name, key, dim=1 if self.node.op == "conv_transpose2d" else 0)
        if array is None:
            raise ExportError(f"no weight {name!r} for node {self.node.name!r}")
        self.weight_names.append(name)
        return self.const(name, np.ascontiguousarray(np.asarray(array).T) if transpose else array)

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append((name, np.asarray(array)))
        return name


def spectrally_normalised(weights: dict[str, np.ndarray], layer: str, key: str, dim: int = 0) -> np.ndarray | None:
    """W / sigma for a weight under ``torch.nn.utils.parametrizations.spectral_norm`` (state dict
    keys ``<layer>.parametrizations.<key>.original`` and ``....0._u`` / ``._v``), with
    sigma = u . (W v), W as a matrix with axis ``dim`` first: what torch computes in eval mode.
    None when the layer has no such weight."""
    prefix = f"{layer}.parametrizations.{key}"
    try:
        original, u, v = (weights[f"{prefix}.{k}"] for k in ("original", "0._u", "0._v"))
    except KeyError:
        return None
    w = np.moveaxis(np.asarray(original, dtype=np.float64), dim, 0)
    sigma = float(np.asarray(u, dtype=np.float64) @ (w.reshape(w.shape[0], -1) @ np.asarray(v, dtype=np.float64)))
    return (np.asarray(original, dtype=np.float64) / sigma).astype(np.asarray(original).dtype)


Emitter = Callable[[Emit], None]
EMITTERS: dict[str, Emitter] = LoweringTable("onnx")  # also ops registered with onnx=...
#: ops with no ONNX form, with the reason (none today)
UNSUPPORTED: dict[str, str] = UnsupportedTable("onnx")  # also ops registered with onnx=None


def emitter(*ops: str) -> Callable[[Emitter], Emitter]:
    def register(fn: Emitter) -> Emitter:
        for op in ops:
            EMITTERS[op] = fn
        return fn

    return register


def _pads(a) -> list[int]:
    ph, pw = a.padding
    return [ph, pw, ph, pw]


@emitter("conv2d")
def _conv2d(e: Emit) -> None:
    a = e.node.attrs
    top, bottom, left, right = resolve_conv_padding(a, int(e.in_types[0].shape[2]), int(e.in_types[0].shape[3]))
    ins = [e.inputs[0], e.weight("weight")] + ([e.weight("bias")] if a.bias else [])
    e.op("Conv", ins, e.outputs, suffix="", kernel_shape=list(a.kernel_size), strides=list(a.stride),
         pads=[top, left, bottom, right], dilations=list(a.dilation), group=a.groups)


@emitter("conv_transpose2d")
def _conv_transpose2d(e: Emit) -> None:
    a = e.node.attrs
    ins = [e.inputs[0], e.weight("weight")] + ([e.weight("bias")] if a.bias else [])
    e.op("ConvTranspose", ins, e.outputs, suffix="", kernel_shape=list(a.kernel_size), strides=list(a.stride),
         pads=_pads(a), output_padding=list(a.output_padding), dilations=list(a.dilation), group=a.groups)


@emitter("linear")
def _linear(e: Emit) -> None:
    """``Gemm`` with a bias; without one ``MatMul`` by the transposed weight, as torch.onnx.export
    writes it: onnxruntime folds a following BatchNormalization into a MatMul (MatMulBnFusion),
    not into a Gemm, so linear + batch norm + activation become one fused Gemm there (the
    VAC+GAN generator's hidden layers: 2 ops instead of 6 after onnxruntime's optimisations)."""
    if e.node.attrs.bias:
        e.op("Gemm", [e.inputs[0], e.weight("weight"), e.weight("bias")], e.outputs, suffix="", transB=1)
    else:
        e.op("MatMul", [e.inputs[0], e.weight("weight", transpose=True)], e.outputs, suffix="")


def _reshape_to(e: Emit) -> None:
    shape = np.array([0, *e.out_types[0].sample_shape], dtype=np.int64)  # 0 keeps the batch
    e.op("Reshape", [e.inputs[0], e.const(f"{e.node.name}.shape", shape)], e.outputs, suffix="")


@emitter("flatten")
def _flatten(e: Emit) -> None:
    a = e.node.attrs
    if a.start_dim == 1 and a.end_dim in (-1, e.in_types[0].rank - 1):
        e.op("Flatten", e.inputs, e.outputs, suffix="", axis=1)
    else:
        _reshape_to(e)


EMITTERS["reshape"] = _reshape_to


@emitter("batch_norm")
def _batch_norm(e: Emit) -> None:
    a = e.node.attrs
    if not a.track_running_stats:
        raise ExportError(f"batch_norm {e.node.name!r} has no running statistics; inference needs them")
    c = int(e.in_types[0].shape[1])
    scale = e.weight("weight") if a.affine else e.const(f"{e.node.name}.weight", np.ones(c, np.float32))
    bias = e.weight("bias") if a.affine else e.const(f"{e.node.name}.bias", np.zeros(c, np.float32))
    e.op("BatchNormalization", [e.inputs[0], scale, bias, e.weight("running_mean"), e.weight("running_var")],
         e.outputs, suffix="", epsilon=a.eps)


@emitter("dropout", "gaussian_noise", "identity")
def _identity(e: Emit) -> None:
    e.op("Identity", e.inputs, e.outputs, suffix="")  # train-time only ops are identities at inference


def _simple(op: str, onnx_op: str, **fixed) -> None:
    def emit(e: Emit) -> None:
        attrs = {k: getattr(e.node.attrs, v) if isinstance(v, str) else v for k, v in fixed.items()}
        e.op(onnx_op, e.inputs, e.outputs, suffix="", **attrs)

    EMITTERS[op] = emit


_simple("relu", "Relu")
_simple("leaky_relu", "LeakyRelu", alpha="negative_slope")
_simple("elu", "Elu", alpha="alpha")
_simple("tanh", "Tanh")
_simple("sigmoid", "Sigmoid")
_simple("softmax", "Softmax", axis="dim")
_simple("concat", "Concat", axis="axis")
_simple("add", "Sum")


@emitter("mul")
def _mul(e: Emit) -> None:
    x = e.inputs[0]
    for i, y in enumerate(e.inputs[1:], start=1):
        last = i == len(e.inputs) - 1
        x = e.op("Mul", [x, y], e.outputs if last else None, suffix="" if last else f"_mul{i}")


def _pool_attrs(a) -> dict:
    return {"kernel_shape": list(a.kernel_size), "strides": list(a.strides), "pads": _pads(a),
            "ceil_mode": int(a.ceil_mode)}


@emitter("max_pool2d")
def _max_pool(e: Emit) -> None:
    a = e.node.attrs
    e.op("MaxPool", e.inputs, e.outputs, suffix="", dilations=list(a.dilation), **_pool_attrs(a))


@emitter("avg_pool2d")
def _avg_pool(e: Emit) -> None:
    a = e.node.attrs
    e.op("AveragePool", e.inputs, e.outputs, suffix="", count_include_pad=int(a.count_include_pad),
         **_pool_attrs(a))


@emitter("adaptive_avg_pool2d")
def _adaptive(e: Emit) -> None:
    h, w = (int(d) for d in e.in_types[0].shape[2:])
    oh, ow = e.node.attrs.output_size
    if (oh, ow) == (1, 1):
        e.op("GlobalAveragePool", e.inputs, e.outputs, suffix="")
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        e.op("AveragePool", e.inputs, e.outputs, suffix="", kernel_shape=k, strides=k)
    else:
        raise ExportError(f"adaptive_avg_pool2d {e.node.name!r}: {h}x{w} -> {oh}x{ow} has uneven windows, "
                          "which ONNX pooling cannot express")


@emitter("max_unpool2d")
def _max_unpool(e: Emit) -> None:
    a = e.node.attrs
    # The op's output is always the default size (in - 1) * stride - 2 * pad + kernel, which is
    # what ONNX computes without an output_shape input (so the importer reads the node back).
    e.op("MaxUnpool", [e.inputs[0], e.inputs[1]], e.outputs, suffix="",
         kernel_shape=list(a.kernel_size), strides=list(a.strides), pads=_pads(a))


def _with_batch_channels(e: Emit, spatial: np.ndarray, suffix: str) -> str:
    """A 4-element shape: the input's batch and channels (known at run time) + ``spatial``."""
    shape_of = e.op("Shape", [e.inputs[0]], suffix="_input_shape")
    head = e.op("Slice", [shape_of, e.const(f"{e.node.name}.s0", np.array([0], np.int64)),
                          e.const(f"{e.node.name}.s2", np.array([2], np.int64))], suffix="_batch_channels")
    return e.op("Concat", [head, e.const(f"{e.node.name}.hw", spatial)], suffix=suffix, axis=0)


def _resize(e: Emit, mode: str, transform: str) -> None:
    """Resize to the output's spatial size: constant ``scales`` when it is an integer multiple of
    the input's (exact in float32, so the output size and the sampling grid are torch's; nothing
    is computed at run time), else ``sizes`` built from the input's batch and channels."""
    (h, w), (oh, ow) = ([int(d) for d in t.shape[2:]] for t in (e.in_types[0], e.out_types[0]))
    extra = {"nearest_mode": "floor"} if mode == "nearest" else {}
    if oh % h == 0 and ow % w == 0:
        scales = e.const(f"{e.node.name}.scales", np.array([1, 1, oh // h, ow // w], np.float32))
        ins = [e.inputs[0], "", scales]
    else:
        ins = [e.inputs[0], "", "", _with_batch_channels(e, np.array([oh, ow], np.int64), "_sizes")]
    e.op("Resize", ins, e.outputs, suffix="", mode=mode, coordinate_transformation_mode=transform, **extra)


@emitter("upsample")
def _upsample(e: Emit) -> None:
    a = e.node.attrs
    if a.mode == "nearest":
        _resize(e, "nearest", "asymmetric")
    else:
        _resize(e, "linear", "align_corners" if a.align_corners else "pytorch_half_pixel")


@emitter("repeat_unpool")
def _repeat_unpool(e: Emit) -> None:
    _resize(e, "nearest", "asymmetric")


@emitter("crop")
def _crop(e: Emit) -> None:
    top, left, bottom, right = crop_box(e.node.attrs.size, int(e.in_types[0].shape[2]), int(e.in_types[0].shape[3]))
    name = e.node.name
    starts = e.const(f"{name}.starts", np.array([top, left], np.int64))
    ends = e.const(f"{name}.ends", np.array([bottom, right], np.int64))
    axes = e.const(f"{name}.axes", np.array([2, 3], np.int64))
    e.op("Slice", [e.inputs[0], starts, ends, axes], e.outputs, suffix="")


@emitter("pad")
def _pad(e: Emit) -> None:
    a = e.node.attrs
    left, right, top, bottom = a.padding
    pads = e.const(f"{e.node.name}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
    mode = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}[a.mode]
    ins = [e.inputs[0], pads]
    if mode == "constant":
        ins.append(e.const(f"{e.node.name}.value", np.array(a.value if a.mode == "constant" else 0.0, np.float32)))
    e.op("Pad", ins, e.outputs, suffix="", mode=mode)


from .building_blocks import EMITTERS as _BLOCK_EMITTERS  # noqa: E402  (the papers' building blocks)
from .building_blocks import UNSUPPORTED as _BLOCK_UNSUPPORTED  # noqa: E402

EMITTERS.update(_BLOCK_EMITTERS)
UNSUPPORTED.update(_BLOCK_UNSUPPORTED)
