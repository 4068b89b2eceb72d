"""Textual form of a graph, one node per line in topological order (stable for golden tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spdnn.ir import meta as M

if TYPE_CHECKING:
    from spdnn.ir.graph import Graph

__all__ = ["format_graph"]


def _attrs(node) -> str:
    fields = type(node.attrs).model_fields
    items = []
    for key, value in node.attrs.model_dump().items():
        if value != fields[key].default:
            items.append(f"{key}={list(value) if isinstance(value, tuple) else value}")
    return ", ".join(items)


def format_graph(graph: Graph) -> str:
    """``%name = op(inputs){attrs} : types`` lines for every node."""
    lines = [f"graph {graph.name} {{"]
    for node in graph:
        ins = ", ".join(f"%{v}" for v in graph.inputs_of(node.name))
        attrs = _attrs(node)
        types = graph.meta_of(node.name).get(M.OUT_TYPES)
        ty = " : " + ", ".join(str(t) for t in types) if types else ""
        lines.append(f"  %{node.name} = {node.op}({ins}){{{attrs}}}{ty}")
    lines.append("}")
    return "\n".join(lines)
