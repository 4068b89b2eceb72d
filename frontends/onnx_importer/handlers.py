"""ONNX op -> IR handlers, keyed by op type. Each returns the IR values (or constants) of the
node's outputs in order; variants the IR cannot express raise ``Unsupported`` with the reason.

Each handler declares the attributes it understands (``ATTRIBUTES``, checked before it runs, see
``attrs.py``); that table is also the source of ``docs/onnx-support.md``. Nodes whose inputs are
all constants never reach a handler: they are folded (``fold.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from spdnn.ir.graph import Value
from spdnn.ops.crop import crop_box

from .attrs import Attr
from .fold import BATCH
from .importer import Context, Unsupported

__all__ = ["ATTRIBUTES", "HANDLERS"]

Handler = Callable[[Context, onnx.NodeProto, dict[str, Any]], list]
HANDLERS: dict[str, Handler] = {}
#: the attributes each op's handler understands
ATTRIBUTES: dict[str, dict[str, Attr]] = {}

INT, FLOAT, PAIR, QUAD = Attr("int"), Attr("float"), Attr("ints", 2), Attr("ints", 4)
BOOL = Attr("int", values=(0, 1))
AUTO_PAD = Attr("string", values=("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"))


def handler(*ops: str, **attrs: Attr) -> Callable[[Handler], Handler]:
    """Register ``fn`` for ``ops``, understanding the attributes ``attrs``."""
    def register(fn: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = fn
            ATTRIBUTES[op] = attrs
        return fn

    return register


def _spatial(ctx: Context, node: onnx.NodeProto) -> None:
    if ctx.type(ctx.value(node.input[0])).rank != 4:
        raise Unsupported("only 2-D (N, C, H, W) inputs are supported")


def _padding(ctx: Context, node, a: dict, kernel, strides, dilations) -> tuple[Any, list[int] | None]:
    """(symmetric padding for the op, or None plus explicit [top, left, bottom, right] pads)."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0), None
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        symmetric = all(s == 1 for s in strides) and all(((k - 1) * d) % 2 == 0 for k, d in zip(kernel, dilations))
        if auto == "SAME_LOWER" and not symmetric:
            raise Unsupported("auto_pad SAME_LOWER with an odd total padding (extra pixel at the start)")
        return "same", None
    pads = _pads(a)
    if pads[0] == pads[2] and pads[1] == pads[3]:
        return (pads[0], pads[1]), None
    return (0, 0), pads


def _pads(a: dict) -> list[int]:
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if min(pads) < 0:
        raise Unsupported(f"negative pads {pads}")
    return pads


def _input(node, i: int) -> str:
    """The name of the node's i-th input, '' when it is omitted."""
    return node.input[i] if len(node.input) > i else ""


def _conv_params(ctx: Context, node, a, what: str, transposed: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The constant 4-D weight and optional bias of a 2-D (transposed) convolution, checked
    against the input's channels, the group count and the kernel size."""
    _spatial(ctx, node)
    w = ctx.need_const(node.input[1], f"{what} weight")
    if w.ndim != 4:
        raise Unsupported(f"only 2-D {what} is supported")
    channels = ctx.type(ctx.value(node.input[0])).shape[1]
    group = a.get("group", 1)
    if group < 1 or channels % group or (w.shape[0] if transposed else w.shape[1] * group) != channels:
        raise Unsupported(f"weight of shape {list(w.shape)} with group={group} does not fit {channels} "
                          "input channels")
    if list(a.get("kernel_shape", w.shape[2:])) != list(w.shape[2:]):
        raise Unsupported(f"kernel_shape {a['kernel_shape']} differs from the weight's {list(w.shape[2:])}")
    b = ctx.const(_input(node, 2)) if _input(node, 2) else None
    out = w.shape[1] * group if transposed else w.shape[0]
    if b is not None and b.shape != (out,):
        raise Unsupported(f"bias of shape {list(b.shape)}; ({out},) expected")
    return w, b


def _params(weight: np.ndarray, bias: np.ndarray | None) -> dict[str, np.ndarray]:
    """State-dict entries of a layer with an optional bias."""
    return {"weight": weight.astype(np.float32)} | ({"bias": bias.astype(np.float32)} if bias is not None else {})


@handler("Conv", auto_pad=AUTO_PAD, dilations=PAIR, group=INT, kernel_shape=PAIR, pads=QUAD, strides=PAIR)
def _conv(ctx: Context, node, a):
    w, b = _conv_params(ctx, node, a, "convolution", transposed=False)
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


@handler("ConvTranspose", auto_pad=Attr("string", values=("NOTSET",)), dilations=PAIR, group=INT,
         kernel_shape=PAIR, output_padding=PAIR, pads=QUAD, strides=PAIR)
def _conv_transpose(ctx: Context, node, a):
    w, b = _conv_params(ctx, node, a, "transposed convolution", transposed=True)
    pads = _pads(a)
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
    if weight.ndim != 2 or weight.shape[1] != ctx.type(x).shape[1]:
        raise Unsupported(f"a weight of shape {list(weight.T.shape)} for {ctx.type(x).shape[1]} input features")
    return ctx.add("linear", {"out_features": weight.shape[0], "bias": bias is not None}, [x],
                   weights=_params(weight, bias))


@handler("Gemm", alpha=FLOAT, beta=FLOAT, transA=Attr("int", values=(0,)), transB=BOOL, broadcast=BOOL)
def _gemm(ctx: Context, node, a):
    b = ctx.need_const(node.input[1], "Gemm B")
    if b.ndim != 2:
        raise Unsupported(f"a {b.ndim}-D B")
    weight = a.get("alpha", 1.0) * (b if a.get("transB", 0) else b.T)
    c = ctx.const(_input(node, 2)) if _input(node, 2) else None
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


@handler("BatchNormalization", epsilon=FLOAT, momentum=FLOAT, training_mode=Attr("int", values=(0,)),
         is_test=Attr("int", values=(1,)), spatial=Attr("int", values=(1,)))
def _batch_norm(ctx: Context, node, a):
    if len(node.output) > 1 and any(node.output[1:]):
        raise Unsupported("training mode (running-statistics outputs)")
    scale, bias, mean, var = (ctx.need_const(i, "BatchNormalization parameters") for i in node.input[1:5])
    x = ctx.value(node.input[0])
    channels = ctx.type(x).shape[1] if ctx.type(x).rank > 1 else 0
    if any(p.shape != (channels,) for p in (scale, bias, mean, var)):
        raise Unsupported(f"parameters of shapes {[list(p.shape) for p in (scale, bias, mean, var)]}; "
                          f"({channels},) expected")
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
               "num_batches_tracked": np.array(0, np.int64)}
    weights = {k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in weights.items()}
    return [ctx.add("batch_norm", {"eps": a.get("epsilon", 1e-5), "momentum": 1 - a.get("momentum", 0.9)},
                    [x], weights=weights)]


def _unary(op: str, **mapping: tuple[str, Any]) -> Handler:
    def handle(ctx: Context, node, a):
        attrs = {ours: a.get(theirs, default) for ours, (theirs, default) in mapping.items()}
        return [ctx.add(op, attrs, [ctx.value(node.input[0])])]

    return handle


handler("Relu")(_unary("relu"))
handler("LeakyRelu", alpha=FLOAT)(_unary("leaky_relu", negative_slope=("alpha", 0.01)))
handler("Elu", alpha=FLOAT)(_unary("elu", alpha=("alpha", 1.0)))
handler("Sigmoid")(_unary("sigmoid"))
handler("Tanh")(_unary("tanh"))


@handler("Identity")
def _identity(ctx: Context, node, a):
    return [ctx.value(node.input[0])]  # an alias, no IR node


@handler("Softmax", axis=INT)
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
    kernel = a["kernel_shape"]
    strides = a.get("strides", [1, 1])
    padding, explicit = _padding(ctx, node, a, kernel, strides, [1, 1])
    if explicit or padding == "same":
        raise Unsupported("asymmetric or automatic pooling pads")
    return {"kernel_size": kernel, "stride": strides, "padding": list(padding),
            "ceil_mode": bool(a.get("ceil_mode", 0))}


POOL = {"auto_pad": AUTO_PAD, "ceil_mode": BOOL, "kernel_shape": Attr("ints", 2, required=True), "pads": QUAD,
        "strides": PAIR}


@handler("MaxPool", **POOL, dilations=PAIR, storage_order=Attr("int", values=(0,)))
def _max_pool(ctx: Context, node, a):
    attrs = _pool_common(ctx, node, a)
    with_indices = len(node.output) > 1 and bool(node.output[1])
    if with_indices and node.output[1] in ctx.graph_outputs:
        raise Unsupported("MaxPool indices as a graph output: ONNX counts them over the whole tensor, torch "
                          "per (N, C) plane")
    v = ctx.add("max_pool2d", {**attrs, "dilation": list(a.get("dilations", [1, 1])),
                               "return_indices": with_indices}, [ctx.value(node.input[0])])
    return [v, Value(v.node, 1)] if with_indices else [v]


@handler("AveragePool", **POOL, count_include_pad=BOOL, dilations=PAIR)
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


@handler("MaxUnpool", kernel_shape=Attr("ints", 2, required=True), pads=QUAD, strides=PAIR)
def _max_unpool(ctx: Context, node, a):
    _spatial(ctx, node)
    pads = _pads(a)
    if pads[0] != pads[2] or pads[1] != pads[3] or (len(node.input) > 2 and node.input[2]):
        raise Unsupported("asymmetric pads or an explicit output_shape")
    return [ctx.add("max_unpool2d", {"kernel_size": list(a["kernel_shape"]), "stride": list(a.get("strides", a["kernel_shape"])),
                                     "padding": [pads[0], pads[1]]},
                    [ctx.value(node.input[0]), ctx.value(node.input[1])])]


@handler("Concat", axis=Attr("int", required=True))
def _concat(ctx: Context, node, a):
    if any(ctx.const(i) is not None for i in node.input):
        raise Unsupported("concatenation with a constant tensor")
    return [ctx.add("concat", {"axis": a["axis"]}, [ctx.value(i) for i in node.input])]


@handler("Flatten", axis=INT)
def _flatten(ctx: Context, node, a):
    axis = a.get("axis", 1)
    rank = ctx.type(ctx.value(node.input[0])).rank
    if axis % rank != 1 and not (axis == rank or axis == -1 and rank == 2):
        raise Unsupported(f"Flatten(axis={axis}) mixes the batch with other dimensions")
    return [ctx.add("flatten", {}, [ctx.value(node.input[0])])]


@handler("Reshape", allowzero=BOOL)
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
        if len(sizes) != 4 or int(sizes[1]) != int(t.shape[1]):
            raise Unsupported("resizing the channel dimension")
        target = {"size": [int(s) for s in sizes[2:]]}
    elif scales is not None and len(scales):
        if len(scales) != 4 or list(scales[:2]) != [1, 1] or any(not np.isfinite(s) or s != int(s) or s < 1
                                                                  for s in scales[2:]):
            raise Unsupported(f"scales {list(scales)}: integer upscaling of H and W only")
        target = {"scale_factor": [int(s) for s in scales[2:]]}
    else:
        raise Unsupported("neither constant scales nor sizes")
    mode = a.get("mode", "nearest")
    transform = a.get("coordinate_transformation_mode", "half_pixel")
    nearest = a.get("nearest_mode", "round_prefer_floor")
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


@handler("Resize", mode=Attr("string", values=("nearest", "linear")), coordinate_transformation_mode=Attr("string"),
         nearest_mode=Attr("string"), antialias=Attr("int", values=(0,)), exclude_outside=Attr("int", values=(0,)),
         keep_aspect_ratio_policy=Attr("string", values=("stretch",)),
         cubic_coeff_a=Attr("float"), extrapolation_value=Attr("float"))
def _resize(ctx: Context, node, a):
    """(cubic_coeff_a and extrapolation_value only matter for modes that are refused.)"""
    _spatial(ctx, node)
    if ctx.opset < 11:
        scales, sizes = ctx.need_const(node.input[1], "Resize scales"), None
    else:
        scales = ctx.const(_input(node, 2)) if _input(node, 2) else None
        sizes = ctx.const(_input(node, 3)) if _input(node, 3) else None
    return [ctx.add("upsample", _resize_attrs(ctx, node, a, scales, sizes), [ctx.value(node.input[0])])]


@handler("Upsample", mode=Attr("string", values=("nearest",)), scales=Attr("floats", 4))
def _upsample(ctx: Context, node, a):
    """(mode linear is refused: Upsample uses asymmetric coordinates, torch's bilinear does not.)"""
    _spatial(ctx, node)
    if _input(node, 1):
        scales = ctx.need_const(node.input[1], "Upsample scales")
    elif "scales" in a:
        scales = np.array(a["scales"])
    else:
        raise Unsupported("no scales")
    attrs = {**a, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return [ctx.add("upsample", _resize_attrs(ctx, node, attrs, scales, None), [ctx.value(node.input[0])])]


@handler("Pad", mode=Attr("string", values=("constant", "reflect", "edge")), pads=Attr("ints", 8), value=FLOAT)
def _pad(ctx: Context, node, a):
    _spatial(ctx, node)
    if _input(node, 1):
        pads = ctx.need_const(node.input[1], "Pad's pads").reshape(-1).tolist()
    elif "pads" in a:
        pads = a["pads"]
    else:
        raise Unsupported("no pads")
    if _input(node, 3):
        raise Unsupported("the axes input")
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise Unsupported(f"pads {pads}: only non-negative padding of H and W")
    value = ctx.const(_input(node, 2)) if _input(node, 2) else a.get("value", 0.0)
    ours = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[a.get("mode", "constant")]
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    return [ctx.add("pad", {"padding": [left, right, top, bottom], "mode": ours,
                            "value": float(np.asarray(value).reshape(-1)[0]) if np.size(value) else 0.0},
                    [ctx.value(node.input[0])])]


@handler("Slice")
def _slice(ctx: Context, node, a):
    """A Slice of H and W (axes 2 and 3, step 1) that keeps the centre window is a ``crop``."""
    _spatial(ctx, node)
    if not _input(node, 3) or (_input(node, 4) and np.any(ctx.need_const(node.input[4], "Slice's steps") != 1)):
        raise Unsupported("only slices with explicit axes and step 1 (centre crops) are supported")
    starts, ends, axes = (ctx.need_const(node.input[i], f"Slice's input {i}").reshape(-1).tolist() for i in (1, 2, 3))
    shape = ctx.type(ctx.value(node.input[0])).shape
    height, width = int(shape[2]), int(shape[3])
    box = {ax % 4: (s, min(e, (height, width)[ax % 4 - 2])) for s, e, ax in zip(starts, ends, axes, strict=True)
           if ax % 4 in (2, 3)}
    if len(box) != len(axes) or any(s < 0 for s, _ in box.values()):
        raise Unsupported(f"slice of axes {axes} with starts {starts}: only non-negative starts on H and W")
    (top, bottom), (left, right) = box.get(2, (0, height)), box.get(3, (0, width))
    size = (bottom - top, right - left)
    if min(size) < 1 or crop_box(size, height, width) != (top, left, bottom, right):
        raise Unsupported(f"slice rows {top}:{bottom}, columns {left}:{right} of {height}x{width} is not a centre crop")
    return [ctx.add("crop", {"size": list(size)}, [ctx.value(node.input[0])])]


@handler("Dropout", ratio=FLOAT, seed=INT, is_test=BOOL)
def _dropout(ctx: Context, node, a):
    """(seed only matters in training mode, which is refused; opset 6's is_test is the IR node's
    own train/eval mode.)"""
    if _input(node, 2) and np.any(ctx.need_const(node.input[2], "training_mode")):
        raise Unsupported("training_mode=true")
    if len(node.output) > 1 and node.output[1]:
        raise Unsupported("the mask output")
    ratio = np.asarray(ctx.const(_input(node, 1)) if _input(node, 1) else a.get("ratio", 0.5))
    if ratio.size != 1:
        raise Unsupported(f"a ratio of shape {list(ratio.shape)}")
    return [ctx.add("dropout", {"p": float(ratio.reshape(-1)[0])}, [ctx.value(node.input[0])])]


# ---------------------------------------------------------------- shapes
@handler("Shape", start=Attr("int"), end=Attr("int"))
def _shape(ctx: Context, node, a):
    """The shape of a computed tensor, the batch size marked BATCH; folded ops use it."""
    t = ctx.type(ctx.value(node.input[0]))
    full = np.array([BATCH, *t.sample_shape], np.int64)
    return [full[a.get("start", 0):a.get("end", None)]]
