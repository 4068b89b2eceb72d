"""Pictures of a system spec as Graphviz DOT and Mermaid text.

Nodes: each network is a box (dashed when frozen, with its parameters' model name), each
declared batch tensor an ellipse (``x: data (1, 8, 8)``), each loss an octagon naming the
optimiser that minimises it. Edges: a flow's input tensor goes from its producer (a declared
tensor, or the network of the flow that made it) to the flow's network, labelled
``tensor → input``; each loss term draws edges from the producers of its tensors, labelled
``weight·type: tensor``. Mermaid text goes through :mod:`spdnn.render`'s escaping helpers.
"""

from __future__ import annotations

from spdnn.render import _dot_esc, mermaid_id, mermaid_text, mermaid_title

from .spec import SystemSpec

__all__ = ["system_dot", "system_mermaid"]


def _nodes(spec: SystemSpec) -> list[tuple[str, str, str]]:
    """(id, label, kind) with kind network, frozen, tensor or loss."""
    nodes = []
    for key, net in spec.networks.items():
        nodes.append((f"net_{key}", f"{key}: {net.graph.name}" + (" (frozen)" if net.frozen else ""),
                      "frozen" if net.frozen else "network"))
    for name, t in spec.tensors.items():
        shape = spec.shapes.get(name)
        nodes.append((f"tensor_{name}", f"{name}: {t.kind}" + (f" (N{''.join(f', {d}' for d in shape.shape)})" if shape else ""), "tensor"))
    minimised_by = {o.loss: o.name for o in spec.optimizers.values()}
    for name in spec.losses:
        by = f" (minimised by {minimised_by[name]})" if name in minimised_by else ""
        nodes.append((f"loss_{name}", f"loss {name}{by}", "loss"))
    return nodes


def _source(spec: SystemSpec, ref: str) -> str:
    if ref in spec.tensors:
        return f"tensor_{ref}"
    return f"net_{spec.flows[ref.split('.')[0]].network}"


def _edges(spec: SystemSpec) -> list[tuple[str, str, str]]:
    """(source id, target id, label)."""
    edges = []
    for t in spec.tensors.values():
        edges += [(f"tensor_{ref}", f"tensor_{t.name}", t.kind) for ref in t.of]
    for flow in spec.flows.values():
        for port, ref in flow.inputs.items():
            edges.append((_source(spec, ref), f"net_{flow.network}", f"{ref} → {port}" if ref != port else ref))
    for loss in spec.losses.values():
        for term in loss.terms:
            refs = [v for v in term.args.values() if isinstance(v, str)]
            for ref in dict.fromkeys(refs):
                edges.append((_source(spec, ref), f"loss_{loss.name}", f"{term.weight_text()}·{term.type}: {ref}"))
    return edges


_DOT_SHAPES = {"network": 'shape=box, style="rounded"', "frozen": 'shape=box, style="rounded,dashed"',
               "tensor": "shape=ellipse", "loss": "shape=octagon"}


def system_dot(spec: SystemSpec) -> str:
    """Graphviz DOT source of the system (render with ``dot -Tpng``)."""
    out = [f'digraph "{_dot_esc(spec.name)}" {{', "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=9];']
    out += [f'  "{i}" [label="{_dot_esc(label)}", {_DOT_SHAPES[kind]}];' for i, label, kind in _nodes(spec)]
    out += [f'  "{a}" -> "{b}" [label="{_dot_esc(label)}"];' for a, b, label in _edges(spec)]
    out.append("}")
    return "\n".join(out) + "\n"


_MERMAID_SHAPES = {"network": ('["', '"]'), "frozen": ('[["', '"]]'), "tensor": ('(["', '"])'),
                   "loss": ('{{"', '"}}')}


def system_mermaid(spec: SystemSpec) -> str:
    """Mermaid flowchart of the system (frozen networks as subroutine boxes)."""
    out = [*mermaid_title(f"system {spec.name}"), "flowchart LR"]
    for i, label, kind in _nodes(spec):
        left, right = _MERMAID_SHAPES[kind]
        out.append(f"  {mermaid_id(i)}{left}{mermaid_text(label)}{right}")
    out += [f'  {mermaid_id(a)} -->|"{mermaid_text(label)}"| {mermaid_id(b)}' for a, b, label in _edges(spec)]
    return "\n".join(out) + "\n"
