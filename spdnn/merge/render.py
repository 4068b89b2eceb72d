"""Pictures of SPDNN stages (like the thesis's Figs. 3.2-3.6): labels drawn on the nodes."""

from __future__ import annotations

from spdnn.merge.layer_graph import INPUT, OUTPUT, LayerGraph, format_label
from spdnn.render import mermaid_id, mermaid_text, mermaid_title

__all__ = ["stage_dot", "stage_mermaid"]


def _lines(lg: LayerGraph, n: str) -> list[str]:
    if n in (INPUT, OUTPUT):
        return [n]
    block = lg.block(n)
    members = ", ".join(str(m) for m in block.members)
    return [format_label(block.label), n, members]


def stage_dot(lg: LayerGraph, title: str) -> str:
    """Graphviz source; parents' chains are laid out side by side (rankdir TB)."""
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    out = [f'digraph "{quoted}" {{', f'  label="{quoted}"; labelloc=t; rankdir=TB;',
           '  node [shape=ellipse, fontname="Helvetica", fontsize=10];']
    for n in lg.order():
        label = "\\n".join(s.replace('"', '\\"') for s in _lines(lg, n))
        shape = ", shape=box" if n in (INPUT, OUTPUT) else ""
        extra = ", style=filled, fillcolor=lightyellow" if len(lg.block(n).members) > 1 else ""
        out.append(f'  "{n}" [label="{label}"{shape}{extra}];')
    for u, v in sorted(lg.g.edges, key=lambda e: (lg.g.nodes[e[0]]["index"], lg.g.nodes[e[1]]["index"])):
        ops = "+".join(op.op for op in lg.edge(u, v).transitions)
        out.append(f'  "{u}" -> "{v}"' + (f' [label="{ops}"]' if ops else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def stage_mermaid(lg: LayerGraph, title: str) -> str:
    """Mermaid flowchart source."""
    out = [*mermaid_title(title), "flowchart TD"]
    for n in lg.order():
        text = "<br/>".join(mermaid_text(s) for s in _lines(lg, n) if s)
        out.append(f'  {mermaid_id(n)}(["{text}"])' if n not in (INPUT, OUTPUT) else f'  {mermaid_id(n)}["{text}"]')
    for u, v in sorted(lg.g.edges, key=lambda e: (lg.g.nodes[e[0]]["index"], lg.g.nodes[e[1]]["index"])):
        ops = "+".join(op.op for op in lg.edge(u, v).transitions)
        out.append(f"  {mermaid_id(u)} -->" + (f'|"{ops}"|' if ops else "") + f" {mermaid_id(v)}")
    return "\n".join(out) + "\n"
