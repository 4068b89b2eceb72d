"""``mirror``: the decoder that mirrors an encoder (seed 001), as an autoencoder or alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ops.conv import resolve_conv_padding
from spdnn.passes.base import Pass, PassResult
from spdnn.passes.graft import chain
from spdnn.passes.infer_shapes import infer_shapes

__all__ = ["MirrorPass", "mirror"]

_DOWN = ("conv2d", "max_pool2d", "avg_pool2d")
_UP = ("conv_transpose2d", "upsample", "repeat_unpool", "max_unpool2d")

Upsampling = Literal["transposed", "nearest", "bilinear", "repeat"]


@dataclass(frozen=True)
class MirrorPass(Pass):
    """Add the decoder with the mirror architecture of the encoder (the graph).

    Seed 001 builds every generator as "the mirror network of the encoder" (L91-115, L323-332;
    Tab. A4 L407-421 with transposed convolutions, Tab. A6/A7 L437-484 with nearest-neighbour
    interpolation, conv2d + tanh last).

    Rules:
      1. The encoder is a chain: one input, one output, each layer feeding the next. Its
         layers are blocks: a conv2d, max_pool2d or avg_pool2d followed by the one-input
         layers that keep its shape (batch_norm, activations, dropout). Layers before the
         first block are not mirrored. Convolutions need groups 1 and dilation 1; an encoder
         that already upsamples (conv_transpose2d, upsample, repeat_unpool, max_unpool2d) is
         refused, so applying the pass twice is an error.
      2. The blocks are mirrored in reverse order, each restoring its encoder block's input
         shape (channels and size) exactly:
         a convolution of stride 1 becomes a conv2d back to its input channels, same kernel,
         padding k-1-p ('same' stays 'same');
         a downsampling layer (stride > 1, or a pooling) becomes, by ``upsampling``:
         'transposed': a conv_transpose2d with the layer's kernel, stride and padding (and the
         output_padding that restores the size); 'nearest' or 'bilinear': an upsample to the
         input size followed, for a convolution, by a conv2d with the same kernel, padding
         'same'; 'repeat': a repeat_unpool by the stride (which must divide the size back
         exactly) followed likewise by the conv2d.
      3. Each mirrored block is followed by copies of its encoder block's shape-keeping layers,
         except the last block (the mirror of the first), which is followed by
         ``activation`` only (seed 001: conv2d + tanh).
      4. Names: ``<layer>_mirror`` for the mirrored layer, ``<layer>_up`` for the upsampling
         before it, ``<layer>_mirror`` for each copied layer (made unique). Each carries its
         encoder layer's spec location.
      5. ``output: autoencoder`` keeps the encoder and makes the reconstruction the graph's
         only output, ``reconstruction``; ``output: decoder`` removes the encoder and gives the
         decoder an input ``code`` of the encoder output's shape and an output ``output``.
    """

    name: ClassVar[str] = "mirror"

    upsampling: Upsampling = "transposed"
    """How downsampling is undone: 'transposed' (conv_transpose2d), 'nearest' or 'bilinear' (upsample), 'repeat' (repeat_unpool)."""
    output: Literal["autoencoder", "decoder"] = "autoencoder"
    """'autoencoder': encoder followed by decoder; 'decoder': the decoder alone, fed an input 'code'."""
    activation: Literal["tanh", "sigmoid", "none"] = "tanh"
    """Activation after the last decoder layer (seed 001: tanh)."""

    def call(self, graph: Graph) -> PassResult:
        mirror(graph, self.upsampling, self.output, self.activation)
        return PassResult(graph, True)


def mirror(graph: Graph, upsampling: Upsampling = "transposed", output: str = "autoencoder",
           activation: str = "tanh") -> None:
    """Apply the rules of :class:`MirrorPass` in place."""
    infer_shapes(graph)
    layers = chain(graph)
    for name in layers:
        if graph.node(name).op in _UP:
            raise PassError(f"mirror: layer {name!r} ({graph.node(name).op}) upsamples: the graph is not an "
                            "encoder (was it mirrored already?)")
    blocks = _blocks(graph, layers)
    if not blocks:
        raise PassError("mirror: the encoder has no conv2d, max_pool2d or avg_pool2d layer to mirror")
    (out_node,) = graph.output_nodes()
    code = graph.inputs_of(out_node.name)[0]
    encoder = [n.name for n in graph if n.op != "output"]
    graph.remove(out_node.name)
    if output == "decoder":
        graph.add_node(graph.unique_name("code"), "input", {"shape": list(graph.type_of(code).sample_shape)})
        new_code = Value(graph.nodes("input")[-1].name, 0)
    x = code if output == "autoencoder" else new_code
    for i, (main, tail) in enumerate(reversed(blocks)):
        last = i == len(blocks) - 1
        x = _mirror_layer(graph, main, x, upsampling)
        for layer in [] if last else tail:
            x = _add(graph, f"{layer}_mirror", graph.node(layer).op, graph.node(layer).attrs, x, layer)
        if last and activation != "none":
            x = _add(graph, f"{main}_{activation}", activation, {}, x, main)
    if output == "decoder":
        for name in reversed(encoder):
            graph.remove(name)
        graph.add_node(graph.unique_name("output"), "output", {}, [x])
    else:
        graph.add_node(graph.unique_name("reconstruction"), "output", {}, [x])
    graph.name = f"{graph.name}_{output}"
    infer_shapes(graph)


def _blocks(graph: Graph, layers: list[str]) -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for name in layers:
        node = graph.node(name)
        if node.op in _DOWN:
            blocks.append((name, []))
        elif _keeps_shape(graph, name):
            if blocks:
                blocks[-1][1].append(name)
        else:
            raise PassError(f"mirror: cannot mirror layer {name!r} ({node.op}): the encoder may hold conv2d, "
                            "max_pool2d, avg_pool2d and layers that keep their input's shape")
    return blocks


def _keeps_shape(graph: Graph, name: str) -> bool:
    ins = graph.inputs_of(name)
    return len(ins) == 1 and graph.out_types(name) == [graph.type_of(ins[0])]


def _add(graph: Graph, base: str, op: str, attrs, x: Value, like: str) -> Value:
    name = graph.add_node(graph.unique_name(base), op, attrs, [x]).name
    origin = graph.meta_of(like).get(M.ORIGIN)
    if origin is not None:
        graph.meta_of(name)[M.ORIGIN] = origin
    return Value(name, 0)


def _mirror_layer(graph: Graph, name: str, x: Value, upsampling: Upsampling) -> Value:
    """The layers undoing encoder layer ``name`` (rule 2), reading ``x``."""
    node, a = graph.node(name), graph.node(name).attrs
    (src,) = graph.inputs_of(name)
    c, h, w = (int(d) for d in graph.type_of(src).sample_shape)
    oh, ow = (int(d) for d in graph.out_types(name)[0].shape[2:])
    is_conv = node.op == "conv2d"
    if is_conv and (a.groups != 1 or a.dilation != (1, 1)):
        raise PassError(f"mirror: conv2d {name!r} has groups {a.groups}, dilation {list(a.dilation)}; "
                        "mirror needs groups 1 and dilation 1")
    stride = a.stride if is_conv else a.strides
    kernel = a.kernel_size
    if is_conv and stride == (1, 1):
        if a.padding == "same":
            padding = "same"
        else:
            pads = resolve_conv_padding(a, h, w)
            padding = [kernel[0] - 1 - pads[0], kernel[1] - 1 - pads[2]]
            if min(padding) < 0:
                raise PassError(f"mirror: conv2d {name!r} pads more than its kernel; its mirror cannot restore "
                                f"{h}x{w}")
        return _add(graph, f"{name}_mirror", "conv2d", {"out_channels": c, "kernel_size": list(kernel),
                                                        "padding": padding, "bias": a.bias}, x, name)
    if upsampling == "transposed":
        attrs = _transposed(graph, name, (h, w), (oh, ow), kernel, stride)
        return _add(graph, f"{name}_mirror", "conv_transpose2d",
                    {"out_channels": c, **attrs, "bias": a.bias if is_conv else True}, x, name)
    if upsampling == "repeat":
        if (oh * stride[0], ow * stride[1]) != (h, w):
            raise PassError(f"mirror: repeating the {oh}x{ow} output of {name!r} by its stride {list(stride)} does "
                            f"not give back {h}x{w}; use upsampling 'nearest', 'bilinear' or 'transposed'")
        x = _add(graph, f"{name}_up", "repeat_unpool", {"factor": list(stride)}, x, name)
    else:
        x = _add(graph, f"{name}_up", "upsample", {"mode": upsampling, "size": [h, w]}, x, name)
    if not is_conv:
        return x
    return _add(graph, f"{name}_mirror", "conv2d", {"out_channels": c, "kernel_size": list(kernel),
                                                    "padding": "same", "bias": a.bias}, x, name)


def _transposed(graph: Graph, name: str, size: tuple[int, int], out: tuple[int, int],
                kernel: tuple[int, int], stride: tuple[int, int]) -> dict:
    """kernel, stride, padding, output_padding of the conv_transpose2d restoring ``size``."""
    a = graph.node(name).attrs
    pads = resolve_conv_padding(a, *size) if graph.node(name).op == "conv2d" else (
        a.padding[0], a.padding[0], a.padding[1], a.padding[1])
    padding, extra = [], []
    for axis, (want, o, k, s) in enumerate(zip(size, out, kernel, stride, strict=True)):
        for p in dict.fromkeys(pads[2 * axis: 2 * axis + 2]):
            op = want - ((o - 1) * s - 2 * p + k)
            if 0 <= op < s:
                padding.append(p)
                extra.append(op)
                break
        else:
            raise PassError(f"mirror: no conv_transpose2d with {name!r}'s kernel and stride restores its size "
                            f"{size[0]}x{size[1]}; use upsampling 'nearest' or 'bilinear'")
    return {"kernel_size": list(kernel), "stride": list(stride), "padding": padding, "output_padding": extra}
