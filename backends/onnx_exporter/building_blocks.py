"""ONNX emitters of the papers' building blocks (rules in spdnn/ops/dynamic.py, wavelet.py,
filter_bank.py, gan.py). Every form keeps the batch dimension symbolic: no emitter bakes N into
an attribute (the grouped-convolution trick would: its group count is the batch)."""

from __future__ import annotations

import numpy as np

from spdnn.ops.conv import resolve_conv_padding

__all__ = ["EMITTERS", "UNSUPPORTED"]


def _ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _reshape(e, x: str, shape: tuple[int, ...], suffix: str, out: list[str] | None = None) -> str:
    """Reshape keeping the batch (0 = copy the input's dimension)."""
    return e.op("Reshape", [x, e.const(f"{e.node.name}{suffix}.shape", _ints(0, *shape))], out, suffix=suffix)


def _dynamic_conv2d(e) -> None:
    """Conv with the M base filters, then (N, out, M) @ (N, M, H·W) per sample."""
    a = e.node.attrs
    h, w = int(e.in_types[0].shape[2]), int(e.in_types[0].shape[3])
    top, bottom, left, right = resolve_conv_padding(a, h, w)
    maps = e.op("Conv", [e.inputs[0], e.weight("weight")], suffix="_repository_maps",
                kernel_shape=list(a.kernel_size), strides=list(a.stride),
                pads=[top, left, bottom, right], dilations=list(a.dilation))
    _, out, oh, ow = e.out_types[0].shape
    flat = _reshape(e, maps, (a.m, oh * ow), "_maps_flat")
    mix = _reshape(e, e.inputs[1], (out, a.m), "_coefficients")
    mixed = e.op("MatMul", [mix, flat], suffix="_mix")
    if not a.bias:
        _reshape(e, mixed, (out, oh, ow), "", e.outputs)
        return
    y = _reshape(e, mixed, (out, oh, ow), "_unbiased")
    bias = _reshape(e, e.weight("bias"), (1, 1), "_bias")  # (out,) -> (out, 1, 1): keeps the state dict's
    e.op("Add", [y, bias], e.outputs, suffix="")                 # shape; onnxruntime folds it


def _sample_conv2d(e) -> None:
    """im2col by strided slices (one per kernel tap), then one batched MatMul with the filters."""
    a = e.node.attrs
    h, w = (int(d) for d in e.in_types[0].shape[2:])
    out, c, kh, kw = e.in_types[1].sample_shape
    top, bottom, left, right = resolve_conv_padding(a, int(h), int(w), (kh, kw))
    x = e.inputs[0]
    if top or bottom or left or right:
        pads = e.const(f"{e.node.name}.pads", _ints(0, 0, top, left, 0, 0, bottom, right))
        x = e.op("Pad", [x, pads], suffix="_pad", mode="constant")
    _, _, oh, ow = e.out_types[0].shape
    (sh, sw), (dh, dw) = a.stride, a.dilation
    axes, steps = e.const(f"{e.node.name}.axes", _ints(2, 3)), e.const(f"{e.node.name}.steps", _ints(sh, sw))
    unsq = e.const(f"{e.node.name}.tap_axis", _ints(2))
    taps = []
    for i in range(kh):
        for j in range(kw):
            name = f"{e.node.name}.tap{i}_{j}"
            starts = e.const(f"{name}.starts", _ints(i * dh, j * dw))
            ends = e.const(f"{name}.ends", _ints(i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1))
            tap = e.op("Slice", [x, starts, ends, axes, steps], suffix=f"_tap{i}_{j}")
            taps.append(e.op("Unsqueeze", [tap, unsq], suffix=f"_tap{i}_{j}_unsqueeze"))
    patches = e.op("Concat", taps, suffix="_patches", axis=2) if len(taps) > 1 else taps[0]
    columns = _reshape(e, patches, (c * kh * kw, oh * ow), "_columns")
    filters = _reshape(e, e.inputs[1], (out, c * kh * kw), "_filters")
    y = e.op("MatMul", [filters, columns], suffix="_matmul")
    _reshape(e, y, (out, oh, ow), "", e.outputs)


def _half(e, x: str, suffix: str, out: list[str] | None = None) -> str:
    half = e.const(f"{e.node.name}{suffix}.half", np.array(0.5, np.float32))
    return e.op("Mul", [x, half], out, suffix=suffix)


def _haar_pool(e) -> None:
    axes, steps = e.const(f"{e.node.name}.axes", _ints(2, 3)), e.const(f"{e.node.name}.steps", _ints(2, 2))
    big = np.iinfo(np.int64).max
    corner = {}
    for label, (i, j) in {"a": (0, 0), "b": (0, 1), "c": (1, 0), "d": (1, 1)}.items():
        starts = e.const(f"{e.node.name}.{label}.starts", _ints(i, j))
        ends = e.const(f"{e.node.name}.{label}.ends", _ints(big, big))
        corner[label] = e.op("Slice", [e.inputs[0], starts, ends, axes, steps], suffix=f"_{label}")
    ab = e.op("Add", [corner["a"], corner["b"]], suffix="_ab")
    cd = e.op("Add", [corner["c"], corner["d"]], suffix="_cd")
    ba = e.op("Sub", [corner["b"], corner["a"]], suffix="_ba")
    dc = e.op("Sub", [corner["d"], corner["c"]], suffix="_dc")
    sums = [e.op("Add", [ab, cd], suffix="_ll2"), e.op("Add", [ba, dc], suffix="_lh2"),
            e.op("Sub", [cd, ab], suffix="_hl2"), e.op("Sub", [dc, ba], suffix="_hh2")]
    for band, total, out in zip(("ll", "lh", "hl", "hh"), sums, e.outputs):
        _half(e, total, f"_{band}", [out])


def _haar_unpool(e) -> None:
    ll, lh, hl, hh = e.inputs
    p, q = e.op("Sub", [ll, hl], suffix="_ll_hl"), e.op("Sub", [lh, hh], suffix="_lh_hh")
    r, s = e.op("Add", [ll, hl], suffix="_llhl"), e.op("Add", [lh, hh], suffix="_lhhh")
    blocks = [e.op("Sub", [p, q], suffix="_a"), e.op("Add", [p, q], suffix="_b"),
              e.op("Sub", [r, s], suffix="_c"), e.op("Add", [r, s], suffix="_d")]
    stacked = e.op("Concat", blocks, suffix="_blocks", axis=1)  # channel (2i + j)·C + c: DCR order
    y = e.op("DepthToSpace", [stacked], suffix="_depth_to_space", blocksize=2, mode="DCR")
    _half(e, y, "", e.outputs)


def _log_filter_bank(e) -> None:
    c = int(e.in_types[0].shape[1])
    outs = []
    for s in range(len(e.node.attrs.sigmas)):
        k = e.weights[f"{e.node.name}.kernel{s}"].shape[-1]
        r = k // 2
        last = len(e.node.attrs.sigmas) == 1
        outs.append(e.op("Conv", [e.inputs[0], e.weight(f"kernel{s}")], e.outputs if last else None,
                         suffix="" if last else f"_sigma{s}", kernel_shape=[k, k], pads=[r, r, r, r], group=c))
    if len(outs) > 1:
        e.op("Concat", outs, e.outputs, suffix="", axis=1)


def _minibatch_discrimination(e) -> None:
    a = e.node.attrs
    name = e.node.name
    proj = e.op("MatMul", [e.inputs[0], e.weight("weight")], suffix="_projection")
    m = _reshape(e, proj, (a.num_kernels, a.kernel_dim), "_kernels")
    rows = e.op("Unsqueeze", [m, e.const(f"{name}.axis1", _ints(1))], suffix="_rows")   # (N, 1, B, D)
    cols = e.op("Unsqueeze", [m, e.const(f"{name}.axis0", _ints(0))], suffix="_cols")   # (1, N, B, D)
    diff = e.op("Abs", [e.op("Sub", [rows, cols], suffix="_diff")], suffix="_abs")
    l1 = e.op("ReduceSum", [diff, e.const(f"{name}.axis3", _ints(3))], suffix="_l1", keepdims=0)
    similarity = e.op("Exp", [e.op("Neg", [l1], suffix="_neg")], suffix="_exp")
    feats = e.op("ReduceSum", [similarity, e.const(f"{name}.axis1b", _ints(1))], suffix="_features", keepdims=0)
    e.op("Concat", [e.inputs[0], feats], e.outputs, suffix="", axis=1)


def _repeat_code(e) -> None:
    name = e.node.name
    k = int(e.in_types[0].shape[1])
    grid = e.op("Unsqueeze", [e.inputs[0], e.const(f"{name}.axes", _ints(2, 3))], suffix="_unsqueeze")
    e.op("Expand", [grid, e.const(f"{name}.shape", _ints(1, k, *e.node.attrs.size))], e.outputs, suffix="")


EMITTERS = {
    "dynamic_conv2d": _dynamic_conv2d,
    "sample_conv2d": _sample_conv2d,
    "haar_pool": _haar_pool,
    "haar_unpool": _haar_unpool,
    "log_filter_bank": _log_filter_bank,
    "minibatch_discrimination": _minibatch_discrimination,
    "repeat_code": _repeat_code,
}

UNSUPPORTED = {
    "wct": "the whitening-and-colouring transform needs a symmetric eigendecomposition, which ONNX "
           "has no operator for; export the network without it or run it in torch",
}
