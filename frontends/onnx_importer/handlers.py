"""ONNX op -> IR handlers, keyed by op type. Each returns the IR values (or constants) of the
node's outputs in order; variants the IR cannot express raise ``Unsupported`` with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from spdnn.ir.graph import Value

from .importer import Context, Unsupported

__all__ = ["HANDLERS"]

Handler = Callable[[Context, onnx.NodeProto, dict[str, Any]], list]
HANDLERS: dict[str, Handler] = {}


def handler(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return register


def _spatial(ctx: Context, node: onnx.NodeProto) -> None:
    if ctx.type(ctx.value(node.input[0])).rank != 4:
        raise Unsupported("only 2-D (N, C, H, W) inputs are supported")


def _padding(ctx: Context, node, a: dict, kernel, strides, dilations) -> tuple[Any, list[int] | None]:
    """(symmetric padding for the op, or None plus explicit [top, left, bottom, right] pads)."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return (0, 0), None
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        symmetric = all(s == 1 for s in strides) and all(((k - 1) * d) % 2 == 0 for k, d in zip(kernel, dilations))
        if auto == "SAME_LOWER" and not symmetric:
            raise Unsupported("auto_pad SAME_LOWER with an odd total padding (extra pixel at the start)")
        return "same", None
    if auto != "NOTSET":
        raise Unsupported(f"auto_pad {auto}")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[0] == pads[2] and pads[1] == pads[3]:
        return (pads[0], pads[1]), None
    return (0, 0), pads


def _conv_params(ctx: Context, node, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The constant 4-D weight and optional bias of a 2-D (transposed) convolution."""
    _spatial(ctx, node)
    w = ctx.need_const(node.input[1], f"{what} weight")
    if w.ndim != 4:
        raise Unsupported(f"only 2-D {what} is supported")
    b = ctx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    return w, b


def _params(weight: np.ndarray, bias: np.ndarray | None) -> dict[str, np.ndarray]:
    """State-dict entries of a layer with an optional bias."""
    return {"weight": weight.astype(np.float32)} | ({"bias": bias.astype(np.float32)} if bias is not None else {})


@handler("Conv")
def _conv(ctx: Context, node, a):
    w, b = _conv_params(ctx, node, "convolution")
    kernel = list(a.get("kernel_shape", w.shape[2:]))
    strides, dilations = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    padding, explicit = _padding(ctx, node, a, kernel, strides, dilations)
    x = ctx.value(node.input[0])
    if explicit:
        top, left, bottom, right = explicit
        x = ctx.add("pad", {"padding": [left, right, top, bottom]}, [x], suffix="_pad")
    return [ctx.add("conv2d", {"out_channels": w.shape[0], "kernel_size": kernel, "stride": strides,
                               "padding": padding, "dilation": dilations, "groups": a.get("group", 1),
                               "bias": b is not None}, [x], weights=_params(w, b))]


@handler("ConvTranspose")
def _conv_transpose(ctx: Context, node, a):
    w, b = _conv_params(ctx, node, "transposed convolution")
    if "output_shape" in a or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unsupported("output_shape and auto_pad are not supported")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise Unsupported(f"asymmetric pads {pads}")
    group = a.get("group", 1)
    return [ctx.add("conv_transpose2d", {
        "out_channels": w.shape[1] * group, "kernel_size": list(a.get("kernel_shape", w.shape[2:])),
        "stride": list(a.get("strides", [1, 1])), "padding": [pads[0], pads[1]],
        "output_padding": list(a.get("output_padding", [0, 0])), "dilation": list(a.get("dilations", [1, 1])),
        "groups": group, "bias": b is not None}, [ctx.value(node.input[0])], weights=_params(w, b))]


def _linear(ctx: Context, x, weight: np.ndarray, bias: np.ndarray | None):
    if ctx.type(x).rank != 2:
        raise Unsupported(f"a {ctx.type(x).rank}-D input; only (N, features) is supported")
    return ctx.add("linear", {"out_features": weight.shape[0], "bias": bias is not None}, [x],
                   weights=_params(weight, bias))


@handler("Gemm")
def _gemm(ctx: Context, node, a):
    if a.get("transA", 0):
        raise Unsupported("transA=1")
    b = ctx.need_const(node.input[1], "Gemm B")
    weight = a.get("alpha", 1.0) * (b if a.get("transB", 0) else b.T)
    c = ctx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    bias = None
    if c is not None:
        out = weight.shape[0]
        if c.size not in (1, out) or c.ndim == 2 and c.shape[0] != 1:
            raise Unsupported(f"a bias C of shape {list(c.shape)}; a scalar or one value per output is supported")
        bias = np.broadcast_to(a.get("beta", 1.0) * c.reshape(-1), (out,)).copy()
    return [_linear(ctx, ctx.value(node.input[0]), weight, bias)]


@handler("MatMul")
def _matmul(ctx: Context, node, a):
    b = ctx.need_const(node.input[1], "MatMul's second operand")
    if b.ndim != 2:
        raise Unsupported("only 2-D constant right operands are supported")
    return [_linear(ctx, ctx.value(node.input[0]), b.T, None)]


def _binary(ctx: Context, node, op: str):
    consts = [ctx.const(i) for i in node.input]
    if all(c is None for c in consts):
        values = [ctx.value(i) for i in node.input]
        shapes = {ctx.type(v).shape for v in values}
        if len(shapes) != 1:
            raise Unsupported(f"broadcasting between shapes {sorted(map(str, shapes))}")
        return ctx.add(op, {}, values)
    if all(c is not None for c in consts):
        return consts[0] + consts[1] if op == "add" else consts[0] * consts[1]
    (c,) = [c for c in consts if c is not None]
    (v,) = [ctx.value(i) for i, k in zip(node.input, consts, strict=True) if k is None]
    producer = ctx.g.node(v.node)
    if op == "add" and producer.op == "linear" and not producer.attrs.bias and ctx.consumers[node.input[
            [k is None for k in consts].index(True)]] == 1:
        out = producer.attrs.out_features
        if c.size in (1, out):  # MatMul + Add = Gemm: fold the constant into the bias
            ctx.g.replace_node(v.node, producer.replace(attrs={"bias": True}))
            ctx.weights[f"{v.node}.bias"] = np.broadcast_to(c.astype(np.float32).reshape(-1), (out,)).copy()
            return v
    if (op == "add" and not np.any(c)) or (op == "mul" and np.all(c == 1)):
        return ctx.add("identity", {}, [v])
    raise Unsupported(f"{'Add' if op == 'add' else 'Mul'} with a constant operand that is not a bias "
                      "of a preceding MatMul")


@handler("Add")
def _add(ctx, node, a):
    return [_binary(ctx, node, "add")]


@handler("Mul")
def _mul(ctx, node, a):
    return [_binary(ctx, node, "mul")]


@handler("Sum")
def _sum(ctx, node, a):
    values = [ctx.value(i) for i in node.input]
    return [ctx.add("add", {}, values) if len(values) > 1 else ctx.add("identity", {}, values)]


@handler("BatchNormalization")
def _batch_norm(ctx: Context, node, a):
    if a.get("training_mode", 0) or len(node.output) > 1 and any(node.output[1:]):
        raise Unsupported("training mode (running-statistics outputs)")
    scale, bias, mean, var = (ctx.need_const(i, "BatchNormalization parameters") for i in node.input[1:5])
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, np.int64)}
    weights = {k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in weights.items()}
    return [ctx.add("batch_norm", {"eps": a.get("epsilon", 1e-5), "momentum": 1 - a.get("momentum", 0.9)},
                    [ctx.value(node.input[0])], weights=weights)]


def _unary(op: str, **mapping: tuple[str, Any]) -> Handler:
    def handle(ctx: Context, node, a):
        attrs = {ours: a.get(theirs, default) for ours, (theirs, default) in mapping.items()}
        return [ctx.add(op, attrs, [ctx.value(node.input[0])])]

    return handle


HANDLERS["Relu"] = _unary("relu")
HANDLERS["LeakyRelu"] = _unary("leaky_relu", negative_slope=("alpha", 0.01))
HANDLERS["Elu"] = _unary("elu", alpha=("alpha", 1.0))
HANDLERS["Sigmoid"] = _unary("sigmoid")
HANDLERS["Tanh"] = _unary("tanh")


@handler("Identity")
def _identity(ctx: Context, node, a):
    name = node.input[0]
    return [ctx.const(name) if ctx.const(name) is not None else ctx.value(name)]  # an alias, no IR node


@handler("Softmax")
def _softmax(ctx: Context, node, a):
    x = ctx.value(node.input[0])
    rank = ctx.type(x).rank
    axis = a.get("axis", -1 if ctx.opset >= 13 else 1)
    if ctx.opset < 13 and axis % rank != rank - 1:
        raise Unsupported(f"opset {ctx.opset} Softmax flattens from axis {axis}; only the last axis is supported")
    if axis % rank == 0:
        raise Unsupported("softmax over the batch dimension")
    return [ctx.add("softmax", {"dim": axis}, [x])]


def _pool_common(ctx: Context, node, a) -> dict[str, Any]:
    _spatial(ctx, node)
    kernel = list(a["kernel_shape"])
    strides = list(a.get("strides", [1, 1]))
    padding, explicit = _padding(ctx, node, a, kernel, strides, [1, 1])
    if explicit or padding == "same":
        raise Unsupported("asymmetric or automatic pooling pads")
    return {"kernel_size": kernel, "stride": strides, "padding": list(padding),
            "ceil_mode": bool(a.get("ceil_mode", 0))}


@handler("MaxPool")
def _max_pool(ctx: Context, node, a):
    attrs = _pool_common(ctx, node, a)
    if a.get("storage_order", 0):
        raise Unsupported("storage_order=1")
    with_indices = len(node.output) > 1 and bool(node.output[1])
    if with_indices and node.output[1] in ctx.graph_outputs:
        raise Unsupported("MaxPool indices as a graph output: ONNX counts them over the whole tensor, torch "
                          "per (N, C) plane")
    v = ctx.add("max_pool2d", {**attrs, "dilation": list(a.get("dilations", [1, 1])),
                               "return_indices": with_indices}, [ctx.value(node.input[0])])
    return [v, Value(v.node, 1)] if with_indices else [v]


@handler("AveragePool")
def _avg_pool(ctx: Context, node, a):
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise Unsupported("dilated average pooling")
    attrs = _pool_common(ctx, node, a)
    return [ctx.add("avg_pool2d", {**attrs, "count_include_pad": bool(a.get("count_include_pad", 0))},
                    [ctx.value(node.input[0])])]


@handler("GlobalAveragePool")
def _global_avg(ctx: Context, node, a):
    _spatial(ctx, node)
    return [ctx.add("adaptive_avg_pool2d", {"output_size": 1}, [ctx.value(node.input[0])])]


@handler("MaxUnpool")
def _max_unpool(ctx: Context, node, a):
    _spatial(ctx, node)
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[0] != pads[2] or pads[1] != pads[3] or (len(node.input) > 2 and node.input[2]):
        raise Unsupported("asymmetric pads or an explicit output_shape")
    return [ctx.add("max_unpool2d", {"kernel_size": list(a["kernel_shape"]), "stride": list(a.get("strides", a["kernel_shape"])),
                                     "padding": [pads[0], pads[1]]},
                    [ctx.value(node.input[0]), ctx.value(node.input[1])])]


@handler("Concat")
def _concat(ctx: Context, node, a):
    if any(ctx.const(i) is not None for i in node.input):
        if all(ctx.const(i) is not None for i in node.input):
            return [np.concatenate([ctx.const(i) for i in node.input], axis=a["axis"])]
        raise Unsupported("concatenation with a constant tensor")
    return [ctx.add("concat", {"axis": a["axis"]}, [ctx.value(i) for i in node.input])]


@handler("Flatten")
def _flatten(ctx: Context, node, a):
    axis = a.get("axis", 1)
    rank = ctx.type(ctx.value(node.input[0])).rank
    if axis % rank != 1 and not (axis == rank or axis == -1 and rank == 2):
        raise Unsupported(f"Flatten(axis={axis}) mixes the batch with other dimensions")
    return [ctx.add("flatten", {}, [ctx.value(node.input[0])])]


@handler("Reshape")
def _reshape(ctx: Context, node, a):
    shape = ctx.need_const(node.input[1], "Reshape's shape").astype(np.int64).tolist()
    x = ctx.value(node.input[0])
    t = ctx.type(x)
    if a.get("allowzero", 0) and 0 in shape:
        raise Unsupported("allowzero=1 with zero dimensions")
    if shape and shape[0] == BATCH:
        shape[0] = 0
    if any(d == BATCH for d in shape) or not shape or shape[0] not in (0, -1) and shape[0] != t.shape[0]:
        raise Unsupported(f"target shape {shape} does not keep the batch dimension first")
    sample = [int(t.shape[i]) if d == 0 else d for i, d in enumerate(shape) if i > 0]
    if shape[0] == -1 and -1 in sample:
        raise Unsupported(f"target shape {shape} has two inferred dimensions")
    return [ctx.add("reshape", {"shape": sample or [1]}, [x])]


def _resize_attrs(ctx: Context, node, a, scales, sizes) -> dict[str, Any]:
    t = ctx.type(ctx.value(node.input[0]))
    if sizes is not None and len(sizes):
        if int(sizes[1]) != int(t.shape[1]):
            raise Unsupported("resizing the channel dimension")
        target = {"size": [int(s) for s in sizes[2:]]}
    elif scales is not None and len(scales):
        if list(scales[:2]) != [1, 1] or any(s != int(s) or s < 1 for s in scales[2:]):
            raise Unsupported(f"scales {list(scales)}: integer upscaling of H and W only")
        target = {"scale_factor": [int(s) for s in scales[2:]]}
    else:
        raise Unsupported("neither constant scales nor sizes")
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    transform = a.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else transform
    nearest = a.get("nearest_mode", b"round_prefer_floor")
    nearest = nearest.decode() if isinstance(nearest, bytes) else nearest
    if mode == "nearest":
        ok = (transform, nearest) in {("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                      ("pytorch_half_pixel", "round_prefer_floor")}
        if not ok or "size" in target and transform != "asymmetric":
            raise Unsupported(f"nearest resize with {transform}/{nearest}; asymmetric/floor (or half-pixel "
                              "rounding with integer scales) is supported")
        return {"mode": "nearest", **target}
    out_size = target.get("size") or [int(d) * f for d, f in zip(t.shape[2:], target["scale_factor"], strict=True)]
    if mode == "linear" and transform == "pytorch_half_pixel" and 1 in out_size:
        raise Unsupported("pytorch_half_pixel to an output size of 1 samples at 0; torch samples the centre")
    if mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        return {"mode": "bilinear", "align_corners": transform == "align_corners", **target}
    raise Unsupported(f"resize mode {mode} with {transform}")


@handler("Resize")
def _resize(ctx: Context, node, a):
    _spatial(ctx, node)
    if a.get("antialias", 0) or a.get("exclude_outside", 0) or "axes" in a:
        raise Unsupported("antialias, exclude_outside and axes are not supported")
    if ctx.opset < 11:
        scales, sizes = ctx.need_const(node.input[1], "Resize scales"), None
    else:
        scales = ctx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        sizes = ctx.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    return [ctx.add("upsample", _resize_attrs(ctx, node, a, scales, sizes), [ctx.value(node.input[0])])]


@handler("Upsample")
def _upsample(ctx: Context, node, a):
    _spatial(ctx, node)
    scales = ctx.need_const(node.input[1], "Upsample scales") if len(node.input) > 1 else np.array(a["scales"])
    attrs = {**a, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    if attrs.get("mode", b"nearest") in (b"linear", "linear"):
        raise Unsupported("Upsample linear uses asymmetric coordinates, which torch's bilinear does not")
    return [ctx.add("upsample", _resize_attrs(ctx, node, attrs, scales, None), [ctx.value(node.input[0])])]


@handler("Pad")
def _pad(ctx: Context, node, a):
    _spatial(ctx, node)
    pads = (ctx.need_const(node.input[1], "Pad's pads") if len(node.input) > 1 else np.array(a["pads"])).tolist()
    if len(node.input) > 3 and node.input[3]:
        raise Unsupported("the axes input")
    if any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise Unsupported(f"pads {pads}: only non-negative padding of H and W")
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = ctx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("value", 0.0)
    ours = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(mode)
    if ours is None:
        raise Unsupported(f"pad mode {mode}")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    return [ctx.add("pad", {"padding": [left, right, top, bottom], "mode": ours,
                            "value": float(np.asarray(value).reshape(-1)[0]) if np.size(value) else 0.0},
                    [ctx.value(node.input[0])])]


@handler("Dropout")
def _dropout(ctx: Context, node, a):
    if len(node.input) > 2 and node.input[2] and bool(ctx.need_const(node.input[2], "training_mode")):
        raise Unsupported("training_mode=true")
    if len(node.output) > 1 and node.output[1]:
        raise Unsupported("the mask output")
    ratio = ctx.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("ratio", 0.5)
    return [ctx.add("dropout", {"p": float(np.asarray(ratio))}, [ctx.value(node.input[0])])]


# ---------------------------------------------------------------- shape arithmetic on constants
#: marks the symbolic batch size inside folded shape tensors
BATCH = np.int64(-(2**62))


@handler("Shape")
def _shape(ctx: Context, node, a):
    t = ctx.type(ctx.value(node.input[0]))
    full = np.array([BATCH, *t.sample_shape], np.int64)
    start, end = a.get("start", 0), a.get("end", None)
    return [full[start:end]]


def _const_inputs(ctx: Context, node, what: str) -> list[np.ndarray | None]:
    values = [ctx.const(i) if i else None for i in node.input]
    if values[0] is None:
        raise Unsupported(f"{what} of a computed tensor (only shape arithmetic on constants is supported)")
    return values


@handler("Gather")
def _gather(ctx: Context, node, a):
    data, indices = _const_inputs(ctx, node, "Gather")
    if indices is None:
        raise Unsupported("Gather with computed indices")
    return [np.take(data, indices, axis=a.get("axis", 0))]


@handler("Slice")
def _slice(ctx: Context, node, a):
    data, starts, ends, *rest = _const_inputs(ctx, node, "Slice") + [None, None]
    axes = rest[0] if rest[0] is not None else np.arange(len(starts))
    steps = rest[1] if rest[1] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return [data[tuple(index)]]


@handler("Unsqueeze")
def _unsqueeze(ctx: Context, node, a):
    data, *axes = _const_inputs(ctx, node, "Unsqueeze")
    axes = sorted(int(x) for x in (axes[0] if axes and axes[0] is not None else a["axes"]))
    for ax in axes:
        data = np.expand_dims(data, ax)
    return [data]


@handler("Squeeze")
def _squeeze(ctx: Context, node, a):
    data, *axes = _const_inputs(ctx, node, "Squeeze")
    axes = axes[0] if axes and axes[0] is not None else a.get("axes")
    return [np.squeeze(data, axis=None if axes is None else tuple(int(x) for x in axes))]


@handler("Cast")
def _cast(ctx: Context, node, a):
    (data,) = _const_inputs(ctx, node, "Cast")
    return [data.astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))]
