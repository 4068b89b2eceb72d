"""Per-layer summary of a shape-inferred graph: shapes, parameters, FLOPs.

FLOPs count one sample (batch 1): a multiply-accumulate is 2 FLOPs, elementwise ops cost one
per output element, pure data movement is free (see :mod:`spdnn.ops.base`).

Parameters are learnable weights; those of a layer with ``trainable: false`` are counted too, and
also reported apart as frozen (``frozen_params``; the text and Markdown tables mark the layer
``(frozen)`` and add a ``frozen params`` line only when there are some).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph
from spdnn.passes.infer_shapes import infer_shapes

__all__ = ["LayerStats", "Summary", "summarize", "count_params", "totals", "human_count", "human_flops"]

_PREFIXES = ((10**12, "T", 2), (10**9, "G", 2), (10**6, "M", 2), (10**3, "k", 1))


def _scaled(n: float) -> tuple[str, str]:
    for scale, prefix, digits in _PREFIXES:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}", prefix
    return f"{n:,}", ""


def human_count(n: int) -> str:
    """350369 -> '350.4 k', 6653889 -> '6.65 M', 130 -> '130' (exact numbers stay in JSON)."""
    number, prefix = _scaled(n)
    return f"{number} {prefix}" if prefix else number


def human_flops(n: int) -> str:
    """8608296960 -> '8.61 GFLOPs', 130 -> '130 FLOPs'."""
    number, prefix = _scaled(n)
    return f"{number} {prefix}FLOPs"


@dataclass(frozen=True)
class LayerStats:
    """One row of the summary."""

    name: str
    op: str
    inputs: list[str]
    output_shapes: list[str]
    params: int
    flops: int
    source: str | None = None
    #: False for a layer written with ``trainable: false`` (its parameters are frozen)
    trainable: bool = True


@dataclass
class Summary:
    """Summary of one model."""

    model: str
    layers: list[LayerStats]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def frozen_params(self) -> int:
        """Parameters of the layers with ``trainable: false`` (part of ``total_params``)."""
        return sum(r.params for r in self.layers if not r.trainable)

    @property
    def trainable_params(self) -> int:
        """Parameters an optimiser updates: ``total_params - frozen_params``."""
        return self.total_params - self.frozen_params

    @property
    def total_flops(self) -> int:
        return sum(r.flops for r in self.layers)

    def _frozen_line(self) -> list[str]:
        if not self.frozen_params:
            return []
        return [f"frozen params: {self.frozen_params:,} ({human_count(self.frozen_params)}); "
                f"trainable: {self.trainable_params:,} ({human_count(self.trainable_params)})"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "layers": [asdict(r) for r in self.layers],
            "total_params": self.total_params,
            "total_flops": self.total_flops,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
        }

    def to_markdown(self) -> str:
        lines = [
            f"## {self.model}",
            "",
            "| layer | op | inputs | output shape | params | FLOPs |",
            "|---|---|---|---|---:|---:|",
        ]
        for r in self.layers:
            lines.append(f"| {r.name} | {_op(r)} | {', '.join(r.inputs)} | {'; '.join(r.output_shapes)} "
                         f"| {r.params:,} | {r.flops:,} |")
        lines.append(f"| **total** | | | | **{self.total_params:,}** | **{self.total_flops:,}** |")
        if self.frozen_params:
            lines.append(f"| **frozen** | | | | **{self.frozen_params:,}** | |")
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        rows = [("layer", "op", "output shape", "params", "FLOPs")]
        rows += [(r.name, _op(r), "; ".join(r.output_shapes), f"{r.params:,}", human_count(r.flops))
                 for r in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        rule = "-" * (sum(widths) + 8)

        def fmt(row):
            return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

        out = [f"model {self.model}", rule, fmt(rows[0]), rule, *(fmt(r) for r in rows[1:]), rule,
               f"total params: {self.total_params:,} ({human_count(self.total_params)})",
               *self._frozen_line(),
               f"total FLOPs (per sample): {human_flops(self.total_flops)}"]
        return "\n".join(out) + "\n"


def _op(row: LayerStats) -> str:
    return row.op if row.trainable else f"{row.op} (frozen)"


def summarize(graph: Graph) -> Summary:
    """Summarise ``graph`` (shape inference is run first if needed)."""
    if any(M.OUT_TYPES not in graph.meta_of(n.name) for n in graph):
        infer_shapes(graph)
    rows = []
    for node in graph:
        meta = graph.meta_of(node.name)
        shapes = [str(t) for t in meta[M.OUT_TYPES]]
        if node.op == "output":
            shapes = [str(graph.type_of(graph.inputs_of(node.name)[0]))]
        rows.append(LayerStats(node.name, node.op, [str(v) for v in graph.inputs_of(node.name)],
                               shapes, meta[M.PARAMS], meta[M.FLOPS], meta.get(M.SOURCE),
                               trainable=getattr(meta.get(M.LAYER_OPTIONS), "trainable", True)))
    return Summary(
        graph.name, rows,
        inputs={n.name: str(graph.out_types(n.name)[0]) for n in graph.input_nodes()},
        outputs={n.name: str(graph.type_of(graph.inputs_of(n.name)[0])) for n in graph.output_nodes()},
    )


def count_params(graph: Graph) -> int:
    """Parameters of ``graph`` (learnable weights, frozen ones included)."""
    return totals(graph)[0]


def totals(graph: Graph) -> tuple[int, int]:
    """(trainable parameters, FLOPs per sample) of ``graph``, without building per-layer rows."""
    names = graph.topo_order()
    if any(M.PARAMS not in graph.meta_of(n) for n in names):
        infer_shapes(graph)
    metas = [graph.meta_of(n) for n in names]
    return sum(m[M.PARAMS] for m in metas), sum(m[M.FLOPS] for m in metas)
