"""``insert-aux-head``: an auxiliary network beside a discriminator (VAC+GAN, VAR+GAN), an
InfoGAN Q head (seed 002), or deep-supervision heads on intermediate layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import PositiveInt

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ops.base import suggest
from spdnn.passes.base import Pass, PassResult
from spdnn.passes.graft import SpecPath, graft, load_network
from spdnn.passes.infer_shapes import infer_node, infer_shapes
from spdnn.passes.options import OneOrMore, PassOptionsError

__all__ = ["InsertAuxHeadPass", "insert_aux_head"]

#: Layers with parameters; the Q head replaces the last of them.
_LAYERS = ("linear", "conv2d")


@dataclass(frozen=True)
class InsertAuxHeadPass(Pass):
    """Add an auxiliary classifier or regressor beside the network (a discriminator).

    Rules, by ``mode``:
      1. ``network`` (VAC+GAN, thesis App. G/H L7234-8838; VAR+GAN, App. I L8839-9354): the
         spec at ``head`` is grafted in beside the graph, its layers named ``<prefix><layer>``;
         it is fed what the graph is fed: its only input reads the graph's only input, or, with
         several, each input reads the graph input of the same name. Its outputs become graph
         outputs ``<prefix><output>``, after the graph's own.
      2. ``q-head`` (InfoGAN; seed 002 L109-114: Q "shares all its layers but the last one with
         the discriminator D"): the last layer is the last linear or conv2d before the graph's
         only output (parameter-free layers after it, such as a sigmoid, are passed over). A
         linear ``q_fc`` with ``codes`` outputs reads what that layer reads (through a
         ``q_flatten`` when that is a feature map) and is the output ``q``.
      3. ``deep-supervision``: for each layer named in ``at``, a head ``<layer>_aux_fc``
         (linear, ``classes`` outputs) reads it, after ``<layer>_aux_pool`` (global average
         pooling) and ``<layer>_aux_flatten`` when it is a feature map; its output is
         ``<layer>_aux``.
      4. Each head gets the spec location of the layer it hangs from. Adding a head whose
         layer names are taken is an error (a second application names what is there).
    """

    name: ClassVar[str] = "insert-aux-head"

    mode: Literal["network", "q-head", "deep-supervision"] = "network"
    """'network': a spec beside the graph; 'q-head': InfoGAN's Q; 'deep-supervision': heads on layers."""
    head: SpecPath | None = None
    """mode network: path of the auxiliary network's YAML spec."""
    prefix: str = "aux_"
    """mode network: prefix of the auxiliary network's layer and output names."""
    codes: PositiveInt | None = None
    """mode q-head: number of latent codes Q predicts."""
    at: OneOrMore | None = None
    """mode deep-supervision: the layers that get a head."""
    classes: PositiveInt | None = None
    """mode deep-supervision: outputs of each head."""

    def __post_init__(self) -> None:
        super().__post_init__()
        needed = {"network": ("head",), "q-head": ("codes",), "deep-supervision": ("at", "classes")}[self.mode]
        missing = [(None, f"pass {self.name!r}: option {key!r} is required when mode is {self.mode!r}")
                   for key in needed if getattr(self, key) is None]
        if missing:
            raise PassOptionsError(self.name, missing)

    def call(self, graph: Graph) -> PassResult:
        insert_aux_head(graph, self)
        return PassResult(graph, True)


def insert_aux_head(graph: Graph, options: InsertAuxHeadPass) -> None:
    """Apply the rules of :class:`InsertAuxHeadPass` in place."""
    infer_shapes(graph)
    if options.mode == "network":
        _network(graph, options.head, options.prefix)
    elif options.mode == "q-head":
        _q_head(graph, options.codes)
    else:
        for layer in options.at:
            _supervise(graph, layer, options.classes)
    infer_shapes(graph)


def _network(graph: Graph, path: str, prefix: str) -> None:
    head = load_network(path)
    inputs = graph.input_nodes()
    if len(inputs) == 1 and len(head.input_nodes()) == 1:
        feed = {head.input_nodes()[0].name: Value(inputs[0].name, 0)}
    else:
        feed = {n.name: Value(n.name, 0) for n in head.input_nodes() if n.name in graph}
    for name, value in graft(graph, head, prefix, feed, f"auxiliary network {path!r}").items():
        _output(graph, prefix + name, value)


def _q_head(graph: Graph, codes: int) -> None:
    _check_free(graph, ["q", "q_fc", "q_flatten"])
    outputs = graph.output_nodes()
    if len(outputs) != 1:
        raise PassError(f"insert-aux-head: a Q head needs a discriminator with one output, got {len(outputs)}")
    last = graph.inputs_of(outputs[0].name)[0].node
    while graph.node(last).op not in _LAYERS:
        ins = graph.inputs_of(last)
        if len(ins) != 1 or graph.meta_of(last).get(M.PARAMS, 0):
            raise PassError(f"insert-aux-head: no linear or conv2d layer ends the discriminator (found "
                            f"{last!r}, {graph.node(last).op})")
        last = ins[0].node
    shared = graph.inputs_of(last)[0]
    if graph.type_of(shared).rank > 2:
        shared = _add(graph, "q_flatten", "flatten", {}, shared, last)
    _output(graph, "q", _add(graph, "q_fc", "linear", {"out_features": codes}, shared, last))


def _supervise(graph: Graph, layer: str, classes: int) -> None:
    if layer not in graph or graph.node(layer).op in ("input", "output"):
        hint = suggest(layer, [n.name for n in graph if n.op not in ("input", "output")])
        raise PassError(f"insert-aux-head: no layer {layer!r} to supervise"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    names = [f"{layer}_aux", f"{layer}_aux_pool", f"{layer}_aux_flatten", f"{layer}_aux_fc"]
    _check_free(graph, names)
    x = Value(layer, 0)
    if graph.type_of(x).rank == 4:
        x = _add(graph, names[1], "adaptive_avg_pool2d", {"output_size": 1}, x, layer)
    if graph.type_of(x).rank > 2:
        x = _add(graph, names[2], "flatten", {}, x, layer)
    _output(graph, names[0], _add(graph, names[3], "linear", {"out_features": classes}, x, layer))


def _check_free(graph: Graph, names: list[str]) -> None:
    taken = [n for n in names if n in graph]
    if taken:
        raise PassError(f"insert-aux-head: the graph has a layer named {taken[0]!r} already "
                        "(was the head added before?)")


def _add(graph: Graph, name: str, op: str, attrs: dict, x: Value, like: str) -> Value:
    graph.add_node(name, op, attrs, [x])
    origin = graph.meta_of(like).get(M.ORIGIN)
    if origin is not None:
        graph.meta_of(name)[M.ORIGIN] = origin
    infer_node(graph, name)
    return Value(name, 0)


def _output(graph: Graph, name: str, value: Value) -> None:
    if name in graph:
        raise PassError(f"insert-aux-head: the graph has a layer named {name!r} already (was the head added before?)")
    graph.add_node(name, "output", {}, [value])
