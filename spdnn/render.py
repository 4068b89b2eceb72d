"""Pictures of a graph as Graphviz DOT and Mermaid text, with op, shape and parameter count
on every node."""

from __future__ import annotations

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph

__all__ = ["to_dot", "to_mermaid"]

_SHAPES = {"input": "invhouse", "output": "house", "concat": "trapezium", "add": "circle"}


def _label(graph: Graph, name: str) -> list[str]:
    node = graph.node(name)
    meta = graph.meta_of(name)
    lines = [name, node.op]
    types = meta.get(M.OUT_TYPES)
    if node.op == "output":
        types = [graph.type_of(graph.inputs_of(name)[0])]
    if types:
        lines.append(" ".join(str(t) for t in types))
    if meta.get(M.PARAMS):
        lines.append(f"{meta[M.PARAMS]:,} params")
    return lines


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: Graph) -> str:
    """Graphviz DOT source (render with ``dot -Tpng``)."""
    out = [f'digraph "{_esc(graph.name)}" {{', "  rankdir=TB;",
           '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];']
    for node in graph:
        label = "\\n".join(_esc(s) for s in _label(graph, node.name))
        shape = _SHAPES.get(node.op)
        extra = f", shape={shape}" if shape else ""
        out.append(f'  "{node.name}" [label="{label}"{extra}];')
    for node in graph:
        for slot, v in enumerate(graph.inputs_of(node.name)):
            attrs = []
            if v.port:
                attrs.append(f'taillabel="{v.port}"')
            if len(graph.inputs_of(node.name)) > 1:
                attrs.append(f'headlabel="{slot}"')
            tail = f" [{', '.join(attrs)}]" if attrs else ""
            out.append(f'  "{v.node}" -> "{node.name}"{tail};')
    out.append("}")
    return "\n".join(out) + "\n"


def to_mermaid(graph: Graph) -> str:
    """Mermaid flowchart source (renders in GitHub markdown and mermaid.live)."""
    out = ["flowchart TD"]
    for node in graph:
        text = "<br/>".join(s.replace('"', "#quot;") for s in _label(graph, node.name))
        left, right = ("[/", "/]") if node.op in ("input", "output") else ("[", "]")
        out.append(f'  {node.name}{left}"{text}"{right}')
    for node in graph:
        for v in graph.inputs_of(node.name):
            label = f"|{v.port}|" if v.port else ""
            out.append(f"  {v.node} -->{label} {node.name}")
    return "\n".join(out) + "\n"
