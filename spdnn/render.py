"""Pictures of a graph as Graphviz DOT and Mermaid text.

Two styles:

* ``compact`` (default): a conv / transposed conv / linear layer and the batch norm,
  activation, dropout and noise layers that follow it in a chain are one box, which shows the
  kernel, stride and channels (``conv2d 3×3 /2, 16 ch``), the folded ops (``+ batch_norm +
  relu``), the output shape and the parameters of the whole box.
* ``full``: one box per node with op, output shape and parameters.

Every Mermaid label is quoted and escaped (``#quot;``, ``#35;``, ``#lt;``, ``#gt;``), node ids
that Mermaid reserves get a prefix, and titles are YAML-quoted, so mermaid-cli renders any
graph.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph

__all__ = ["to_dot", "to_mermaid", "mermaid_text", "mermaid_id", "mermaid_title", "STYLES"]

STYLES = ("compact", "full")

_SHAPES = {"input": "invhouse", "output": "house", "concat": "trapezium", "add": "circle"}
_HEADS = {"conv2d", "conv_transpose2d", "linear"}
_FOLDED = {"batch_norm", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softmax", "dropout",
           "gaussian_noise", "identity"}


@dataclass
class _Box:
    """One box of the picture: a head node and the nodes folded into it."""

    name: str
    nodes: list[str] = field(default_factory=list)


def _pair(value) -> str:
    a, b = value if isinstance(value, (tuple, list)) else (value, value)
    return f"{a}×{b}" if a != b else f"{a}×{a}"


def _describe(graph: Graph, name: str) -> str:
    """``conv2d 3×3 /2, 16 ch``; ``linear, 10``; ``max_pool2d 2×2``; else the op name."""
    node = graph.node(name)
    a = node.attrs
    if node.op in ("conv2d", "conv_transpose2d"):
        stride = "" if tuple(a.stride) == (1, 1) else f" /{a.stride[0] if a.stride[0] == a.stride[1] else _pair(a.stride)}"
        return f"{node.op} {_pair(a.kernel_size)}{stride}, {a.out_channels} ch"
    if node.op == "linear":
        return f"linear, {a.out_features}"
    if node.op in ("max_pool2d", "avg_pool2d"):
        return f"{node.op} {_pair(a.kernel_size)}"
    return node.op


def _boxes(graph: Graph, style: str) -> tuple[list[_Box], dict[str, str]]:
    """The boxes in topological order and, for every node, the box it is drawn in."""
    box_of: dict[str, str] = {}
    boxes: list[_Box] = []
    outputs_read = {v.node for n in graph.output_nodes() for v in graph.inputs_of(n.name)}
    for node in graph:
        if node.name in box_of:
            continue
        box = _Box(node.name, [node.name])
        box_of[node.name] = node.name
        if style == "compact" and node.op in _HEADS:
            tail = node.name
            while tail not in outputs_read:
                users = graph.users_of(tail)
                if len(users) != 1:
                    break
                user = users[0][0]
                if graph.node(user).op not in _FOLDED or len(graph.inputs_of(user)) != 1:
                    break
                box.nodes.append(user)
                box_of[user] = node.name
                tail = user
        boxes.append(box)
    return boxes, box_of


def _box_lines(graph: Graph, box: _Box, style: str) -> list[str]:
    head = graph.node(box.name)
    lines = [box.name, _describe(graph, box.name) if style == "compact" else head.op]
    if len(box.nodes) > 1:
        lines.append("+ " + " + ".join(graph.node(n).op for n in box.nodes[1:]))
    last = box.nodes[-1]
    types = graph.meta_of(last).get(M.OUT_TYPES)
    if head.op == "output":
        types = [graph.type_of(graph.inputs_of(box.name)[0])]
    if types:
        lines.append(" ".join(str(t) for t in types))
    params = sum(graph.meta_of(n).get(M.PARAMS) or 0 for n in box.nodes)
    if params:
        lines.append(f"{params:,} params")
    return lines


def _edges(graph: Graph, boxes: list[_Box], box_of: dict[str, str]) -> Iterator[tuple[str, str, int, int, int]]:
    """(source box, target box, source port, target slot, number of target inputs)."""
    for box in boxes:
        ins = graph.inputs_of(box.name)
        for slot, v in enumerate(ins):
            yield box_of[v.node], box.name, v.port, slot, len(ins)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"picture style must be one of {STYLES}, got {style!r}")


def _dot_esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: Graph, style: str = "compact") -> str:
    """Graphviz DOT source (render with ``dot -Tpng``)."""
    _check_style(style)
    boxes, box_of = _boxes(graph, style)
    out = [f'digraph "{_dot_esc(graph.name)}" {{', "  rankdir=TB;",
           '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];']
    for box in boxes:
        label = "\\n".join(_dot_esc(s) for s in _box_lines(graph, box, style))
        shape = _SHAPES.get(graph.node(box.name).op)
        extra = f", shape={shape}" if shape else ""
        out.append(f'  "{_dot_esc(box.name)}" [label="{label}"{extra}];')
    for src, dst, port, slot, n_in in _edges(graph, boxes, box_of):
        attrs = ([f'taillabel="{port}"'] if port else []) + ([f'headlabel="{slot}"'] if n_in > 1 else [])
        tail = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f'  "{_dot_esc(src)}" -> "{_dot_esc(dst)}"{tail};')
    out.append("}")
    return "\n".join(out) + "\n"


#: Words Mermaid's flowchart grammar reserves; a node id equal to one gets a prefix.
_MERMAID_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click",
                     "default", "direction", "linkStyle", "call", "href", "interpolate"}


def mermaid_id(name: str) -> str:
    """A node id Mermaid accepts for a node name (identifiers; reserved words prefixed)."""
    return f"n_{name}" if name in _MERMAID_RESERVED or name.lower() in _MERMAID_RESERVED else name


def mermaid_text(text: str) -> str:
    """Text for inside a quoted Mermaid label: entity codes for # " < >."""
    return (text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;"))


def mermaid_title(title: str) -> list[str]:
    """YAML front matter with the title as a double-quoted scalar (JSON strings are valid YAML)."""
    return ["---", f"title: {json.dumps(title, ensure_ascii=False)}", "---"]


def to_mermaid(graph: Graph, style: str = "compact") -> str:
    """Mermaid flowchart source (renders in GitHub markdown, mermaid.live and mermaid-cli)."""
    _check_style(style)
    boxes, box_of = _boxes(graph, style)
    out = [*mermaid_title(graph.name), "flowchart TD"]
    for box in boxes:
        text = "<br/>".join(mermaid_text(s) for s in _box_lines(graph, box, style))
        left, right = ("[/", "/]") if graph.node(box.name).op in ("input", "output") else ("[", "]")
        out.append(f'  {mermaid_id(box.name)}{left}"{text}"{right}')
    for src, dst, port, _slot, _n in _edges(graph, boxes, box_of):
        label = f'|"{port}"|' if port else ""
        out.append(f"  {mermaid_id(src)} -->{label} {mermaid_id(dst)}")
    return "\n".join(out) + "\n"
