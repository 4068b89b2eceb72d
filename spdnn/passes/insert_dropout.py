"""``insert-dropout``: the worked example of a pass (README, "Extending spdnn")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ops.base import all_ops, suggest
from spdnn.passes.base import Pass, PassResult
from spdnn.passes.infer_shapes import infer_node
from spdnn.passes.options import OneOrMore

__all__ = ["InsertDropoutPass", "insert_dropout"]

_NOT_AFTER = ("input", "output", "dropout")


def _known_ops(names: tuple[str, ...]) -> tuple[str, ...]:
    ops = all_ops()
    for name in names:
        if name in _NOT_AFTER:
            raise ValueError(f"dropout is not inserted after {name!r} layers")
        if name not in ops:
            hint = suggest(name, ops)
            raise ValueError(f"unknown op {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return names


@dataclass(frozen=True)
class InsertDropoutPass(Pass):
    """After every conv2d whose output feeds other layers, insert a dropout with probability p.

    Rules:
      1. A node matches when its op is in ``after`` (default: conv2d) and its first output
         feeds at least one layer (a node that is not a graph output).
      2. A new ``dropout`` node named ``<node>_dropout`` (made unique) reads that output, and
         every layer that read it reads the dropout instead. Graph outputs keep reading the
         node itself, so the network's outputs in evaluation mode do not change.
      3. Idempotent: a node whose layers are all dropouts already is left alone, so applying
         the pass twice gives the graph of applying it once.
      4. The dropout gets the node's spec location, and its shape is inferred at once.
    """

    name: ClassVar[str] = "insert-dropout"

    p: Annotated[float, Field(ge=0, lt=1)] = 0.5
    """Drop probability of each inserted dropout."""
    after: Annotated[OneOrMore, AfterValidator(_known_ops)] = ("conv2d",)
    """Ops after which a dropout is inserted (one op name or a list)."""

    def call(self, graph: Graph) -> PassResult:
        return PassResult(graph, insert_dropout(graph, self.p, self.after) > 0)


def insert_dropout(graph: Graph, p: float = 0.5, after: tuple[str, ...] = ("conv2d",)) -> int:
    """Apply the rules of :class:`InsertDropoutPass` in place; return how many dropouts were
    inserted."""
    inserted = 0
    for node in [n for n in graph if n.op in after]:
        layers = [u for u, _, port in graph.users_of(node.name)
                  if port == 0 and graph.node(u).op != "output"]
        if not layers or all(graph.node(u).op == "dropout" for u in layers):
            continue
        drop = graph.add_node(graph.unique_name(f"{node.name}_dropout"), "dropout", {"p": p},
                              inputs=[Value(node.name, 0)])
        for user, slot, port in graph.users_of(node.name):
            if port == 0 and user != drop.name and graph.node(user).op != "output":
                graph.disconnect(user, slot)
                graph.connect(drop.name, user, slot)
        origin = graph.meta_of(node.name).get(M.ORIGIN)
        if origin is not None:
            graph.meta_of(drop.name)[M.ORIGIN] = origin
        if M.OUT_TYPES in graph.meta_of(node.name):
            infer_node(graph, drop.name)
        inserted += 1
    return inserted
