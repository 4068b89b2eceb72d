"""Helpers shared by passes that build on a graph: another spec's network grafted in, and
single-input, single-output chains walked in order.

Rules:
  1. ``load_network(path)`` loads a YAML spec (``spdnn.load_spec``); a missing file is an
     option error of the pass that asked for it, raised when the options are validated.
  2. ``graft(graph, other, prefix, feed)`` copies every layer of ``other`` into ``graph`` as
     ``<prefix><name>``; ``other``'s inputs are not copied: each reads the value ``feed``
     gives for it, whose per-sample shape must equal the input's. Spec locations and
     citations travel with the layers. A name that is taken already is an error (the network
     was grafted before).
"""

from __future__ import annotations

from pathlib import Path

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value

__all__ = ["chain", "existing_file", "graft", "load_network"]


def existing_file(path: str) -> str:
    """Option validator: ``path`` names a file that exists."""
    if not Path(path).is_file():
        raise ValueError(f"no such file {path!r}")
    return path


def load_network(path: str) -> Graph:
    """The verified, shape-inferred graph of the spec at ``path``."""
    import spdnn

    return spdnn.load_spec(path)


def graft(graph: Graph, other: Graph, prefix: str, feed: dict[str, Value], what: str) -> dict[str, Value]:
    """Copy ``other``'s layers into ``graph`` (rule 2); return, for each output of ``other``,
    the value of ``graph`` it reads."""
    missing = [n.name for n in other.input_nodes() if n.name not in feed]
    if missing:
        raise PassError(f"{what}: nothing feeds its input {missing[0]!r}")
    for node in other.input_nodes():
        have, want = graph.type_of(feed[node.name]), other.out_types(node.name)[0]
        if have.sample_shape != want.sample_shape:
            raise PassError(f"{what}: its input {node.name!r} takes per-sample shape {list(want.sample_shape)}, "
                            f"but it would be fed {feed[node.name]} of shape {list(have.sample_shape)}")
    values = {(n.name, 0): feed[n.name] for n in other.input_nodes()}
    for name in other.topo_order():
        node = other.node(name)
        if node.op in ("input", "output"):
            continue
        new = prefix + name
        if new in graph:
            raise PassError(f"{what}: the graph has a layer named {new!r} already (was it added before?)")
        inputs = [values[(v.node, v.port)] for v in other.inputs_of(name)]
        graph.add_node(new, node.op, node.attrs, inputs)
        for key in (M.ORIGIN, M.SOURCE, M.OUT_TYPES, M.PARAMS, M.FLOPS):
            if key in other.meta_of(name):
                graph.meta_of(new)[key] = other.meta_of(name)[key]
        for port in range(len(other.out_types(name))):
            values[(name, port)] = Value(new, port)
    return {o.name: values[(v.node, v.port)] for o in other.output_nodes() for v in other.inputs_of(o.name)}


def chain(graph: Graph) -> list[str]:
    """The layers of a single-input, single-output graph in which every layer feeds exactly
    the next one, input to output (inputs and outputs excluded); PassError otherwise."""
    inputs, outputs = graph.input_nodes(), graph.output_nodes()
    if len(inputs) != 1 or len(outputs) != 1:
        raise PassError(f"expected one input and one output, got {len(inputs)} inputs and {len(outputs)} outputs")
    order, current = [], inputs[0].name
    while True:
        users = graph.users_of(current)
        if len(users) != 1:
            raise PassError(f"layer {current!r} feeds {len(users)} layers; expected a chain where each layer "
                            "feeds the next")
        current = users[0][0]
        if graph.node(current).op == "output":
            return order
        order.append(current)
