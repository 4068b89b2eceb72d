"""The IR graph: typed nodes over a networkx ``MultiDiGraph`` with ported edges.

Design notes:

* ``Graph`` owns a private ``nx.MultiDiGraph``; passes change structure only through its
  methods, which keep the invariants. ``view()`` hands out a read-only view for analyses.
* An edge ``src -> dst`` carries ``src_port`` (which output of ``src``) and ``dst_port``
  (which input slot of ``dst``); the edge key is ``dst_port``, so ``add(x, x)`` is two edges.
* Node payloads (:class:`Node`) are frozen; derived facts (output types, source locations)
  live in per-node ``meta`` dicts under the keys of :mod:`spdnn.ir.meta`.
* Iteration order is deterministic: a topological order that breaks ties by insertion order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
from pydantic import ValidationError

from spdnn.errors import UnknownOpError, VerifyError
from spdnn.ir import meta as M
from spdnn.ir.naming import is_valid_name, unique_name
from spdnn.ir.types import TensorType
from spdnn.ops import OpAttrs, get_op

__all__ = ["Node", "Value", "Graph"]


@dataclass(frozen=True)
class Node:
    """One layer of the network.

    Attributes:
        name: unique identifier (also the torch submodule and ONNX node name).
        op: registered op name.
        attrs: the op's validated attribute model.
    """

    name: str
    op: str
    attrs: OpAttrs

    def replace(self, **changes: Any) -> Node:
        """A copy with some fields changed (``attrs`` may be a dict of changed attributes)."""
        attrs = changes.get("attrs")
        if isinstance(attrs, Mapping):
            changes["attrs"] = type(self.attrs).model_validate({**self.attrs.model_dump(), **attrs})
        return replace(self, **changes)


@dataclass(frozen=True)
class Value:
    """Reference to one output of a node: ``Value("pool1", 1)`` is pool1's indices."""

    node: str
    port: int = 0

    def __str__(self) -> str:
        return self.node if self.port == 0 else f"{self.node}:{self.port}"


ValueLike = str | Value | tuple[str, int] | Node


def _as_value(v: ValueLike) -> Value:
    if isinstance(v, Value):
        return v
    if isinstance(v, Node):
        return Value(v.name)
    if isinstance(v, tuple):
        return Value(v[0], v[1])
    return Value(v)


@dataclass
class _NodeRecord:
    node: Node
    index: int
    meta: dict[str, Any] = field(default_factory=dict)


class Graph:
    """A directed acyclic graph of :class:`Node` s with ported edges.

    Example:
        >>> g = Graph("tiny")
        >>> x = g.add_node("x", "input", {"shape": [4]})
        >>> fc = g.add_node("fc", "linear", {"out_features": 2}, inputs=[x])
        >>> _ = g.add_node("y", "output", inputs=[fc])
        >>> [n.name for n in g]
        ['x', 'fc', 'y']
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        #: free-form graph-level metadata (source spec, merge provenance, ...)
        self.meta: dict[str, Any] = {}
        self._g = nx.MultiDiGraph()
        self._counter = itertools.count()
        self._order: list[str] | None = None

    # ------------------------------------------------------------------ building
    def add_node(
        self,
        name: str,
        op: str,
        attrs: Mapping[str, Any] | OpAttrs | None = None,
        inputs: Iterable[ValueLike] = (),
    ) -> Node:
        """Add a node and connect ``inputs`` to its input slots 0, 1, ...

        Raises:
            UnknownOpError: ``op`` is not registered.
            VerifyError: the name is invalid or taken, an input does not exist, or the
                attributes do not validate.
        """
        opdef = get_op(op)
        if not is_valid_name(name):
            raise VerifyError(f"invalid node name {name!r}: use letters, digits and _")
        if name in self._g:
            raise VerifyError(f"a node named {name!r} already exists in graph {self.name!r}")
        if not isinstance(attrs, OpAttrs):
            try:
                attrs = opdef.attrs.model_validate(dict(attrs or {}))
            except ValidationError as e:
                raise VerifyError(f"invalid attributes for {op} node {name!r}: {e}") from e
        elif not isinstance(attrs, opdef.attrs):
            raise VerifyError(f"{op} node {name!r} needs {opdef.attrs.__name__}, got {type(attrs).__name__}")
        values = [_as_value(v) for v in inputs]
        for v in values:
            if v.node not in self._g:
                raise VerifyError(f"input {v} of node {name!r} does not exist")
        node = Node(name, op, attrs)
        self._g.add_node(name, rec=_NodeRecord(node, next(self._counter)))
        for slot, v in enumerate(values):
            self._g.add_edge(v.node, name, key=slot, src_port=v.port)
        self._order = None
        return node

    def connect(self, src: ValueLike, dst: str, dst_port: int) -> None:
        """Connect output ``src`` to input slot ``dst_port`` of ``dst`` (slot must be free)."""
        v = _as_value(src)
        for n in (v.node, dst):
            if n not in self._g:
                raise VerifyError(f"node {n!r} does not exist")
        if self._g.has_edge(v.node, dst, key=dst_port) or dst_port in self._slots(dst):
            raise VerifyError(f"input slot {dst_port} of {dst!r} is already connected")
        self._g.add_edge(v.node, dst, key=dst_port, src_port=v.port)
        self._order = None

    def disconnect(self, dst: str, dst_port: int) -> None:
        """Remove the edge feeding input slot ``dst_port`` of ``dst``."""
        for u, _, k in list(self._g.in_edges(dst, keys=True)):
            if k == dst_port:
                self._g.remove_edge(u, dst, key=k)
                self._order = None
                return
        raise VerifyError(f"input slot {dst_port} of {dst!r} is not connected")

    def replace_node(self, name: str, node: Node) -> None:
        """Swap the payload of ``name`` (same name) keeping edges and meta."""
        if node.name != name:
            raise VerifyError("replace_node keeps the name; use rename() to rename")
        self._rec(name).node = node

    def replace_all_uses_with(self, old: ValueLike, new: ValueLike) -> int:
        """Point every consumer of output ``old`` at ``new``; returns the number of uses moved."""
        o, n = _as_value(old), _as_value(new)
        moved = 0
        for _, dst, k, data in list(self._g.out_edges(o.node, keys=True, data=True)):
            if data["src_port"] == o.port and dst != n.node:
                self._g.remove_edge(o.node, dst, key=k)
                self._g.add_edge(n.node, dst, key=k, src_port=n.port)
                moved += 1
        self._order = None
        return moved

    def remove(self, name: str) -> None:
        """Remove a node that has no users.

        Raises:
            VerifyError: the node still has users.
        """
        users = self.users_of(name)
        if users:
            raise VerifyError(f"cannot remove {name!r}: still used by {sorted({u for u, _, _ in users})}")
        self._g.remove_node(name)
        self._order = None

    def unique_name(self, base: str) -> str:
        """A fresh node name derived from ``base``."""
        return unique_name(base, self._g)

    # ------------------------------------------------------------------ queries
    def node(self, name: str) -> Node:
        """The node called ``name`` (KeyError if absent)."""
        return self._rec(name).node

    def meta_of(self, name: str) -> dict[str, Any]:
        """Mutable metadata dict of a node (see :mod:`spdnn.ir.meta` for the keys)."""
        return self._rec(name).meta

    def out_types(self, name: str) -> list[TensorType]:
        """Output types of a node, as computed by shape inference."""
        try:
            return self._rec(name).meta[M.OUT_TYPES]
        except KeyError:
            raise VerifyError(f"no shapes for {name!r}: run shape inference first") from None

    def type_of(self, value: ValueLike) -> TensorType:
        """Type of one value (a node output)."""
        v = _as_value(value)
        return self.out_types(v.node)[v.port]

    def inputs_of(self, name: str) -> list[Value]:
        """Producers feeding ``name``, ordered by input slot."""
        edges = sorted((k, u, d["src_port"]) for u, keys in self._g.pred[name].items()
                       for k, d in keys.items())
        return [Value(u, p) for _, u, p in edges]

    def users_of(self, name: str) -> list[tuple[str, int, int]]:
        """Consumers of ``name`` as (consumer, dst_port, src_port), deterministic order."""
        out = [(v, k, d["src_port"]) for _, v, k, d in self._g.out_edges(name, keys=True, data=True)]
        return sorted(out, key=lambda t: (self._rec(t[0]).index, t[1]))

    def predecessors(self, name: str) -> list[str]:
        """Distinct producer nodes of ``name`` in slot order."""
        return list(dict.fromkeys(v.node for v in self.inputs_of(name)))

    def successors(self, name: str) -> list[str]:
        """Distinct consumer nodes of ``name`` in insertion order."""
        return list(dict.fromkeys(u for u, _, _ in self.users_of(name)))

    def topo_order(self) -> list[str]:
        """Node names in topological order, ties broken by insertion order (cached).

        Raises:
            VerifyError: the graph has a cycle.
        """
        if self._order is None:
            try:
                self._order = list(
                    nx.lexicographical_topological_sort(self._g, key=lambda n: self._rec(n).index)
                )
            except nx.NetworkXUnfeasible:
                cycle = nx.find_cycle(self._g)
                path = " -> ".join(str(e[0]) for e in cycle) + f" -> {cycle[0][0]}"
                raise VerifyError(f"graph {self.name!r} has a cycle: {path}") from None
        return list(self._order)

    def __iter__(self) -> Iterator[Node]:
        return (self.node(n) for n in self.topo_order())

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def nodes(self, op: str | None = None) -> list[Node]:
        """Nodes in topological order, optionally only those of one op."""
        return [n for n in self if op is None or n.op == op]

    def input_nodes(self) -> list[Node]:
        """Graph inputs in insertion order."""
        return sorted(self.nodes("input"), key=lambda n: self._rec(n.name).index)

    def output_nodes(self) -> list[Node]:
        """Graph outputs in insertion order."""
        return sorted(self.nodes("output"), key=lambda n: self._rec(n.name).index)

    def view(self) -> nx.MultiDiGraph:
        """A read-only networkx view of the structure, for analyses."""
        return self._g.copy(as_view=True)

    def num_edges(self) -> int:
        return self._g.number_of_edges()

    def copy(self, name: str | None = None) -> Graph:
        """An independent copy (payloads are immutable and shared; meta dicts are copied)."""
        g = Graph(name or self.name)
        g.meta = dict(self.meta)
        for n in sorted(self._g, key=lambda n: self._rec(n).index):
            rec = self._rec(n)
            g._g.add_node(n, rec=_NodeRecord(rec.node, next(g._counter), dict(rec.meta)))
        for u, v, k, d in self._g.edges(keys=True, data=True):
            g._g.add_edge(u, v, key=k, src_port=d["src_port"])
        return g

    def structure(self) -> list[tuple[str, str, dict[str, Any], list[str]]]:
        """A plain, comparable description: (name, op, attrs, inputs) per node in topo order."""
        return [
            (n.name, n.op, n.attrs.model_dump(mode="json"), [str(v) for v in self.inputs_of(n.name)])
            for n in self
        ]

    # ------------------------------------------------------------------ checking
    def verify(self) -> None:
        """Check the invariants; raise VerifyError listing every violation.

        Checks: acyclic; registered ops; attributes valid for the op; every input slot
        filled exactly once and arity within the op's bounds; source ports exist; unique,
        valid names; at least one input and one output; every output reachable from an input.
        """
        problems: list[str] = []
        try:
            order = self.topo_order()
        except VerifyError as e:
            raise VerifyError(str(e)) from None
        for name in order:
            node = self.node(name)
            try:
                opdef = get_op(node.op)
            except UnknownOpError as e:
                problems.append(f"{name}: {e}")
                continue
            if node.name != name or not is_valid_name(name):
                problems.append(f"{name}: invalid or mismatched node name {node.name!r}")
            try:
                opdef.attrs.model_validate(node.attrs.model_dump())
            except ValidationError as e:
                problems.append(f"{name}: invalid attributes: {e}")
            slots = self._slots(name)
            lo, hi = opdef.input_arity()
            if slots != list(range(len(slots))):
                problems.append(f"{name}: input slots {slots} are not filled exactly once from 0")
            if len(slots) < lo or (hi is not None and len(slots) > hi):
                want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'n'}"
                problems.append(f"{name}: {node.op} takes {want} inputs, has {len(slots)}")
            for v in self.inputs_of(name):
                src = self.node(v.node)
                n_out = get_op(src.op).num_outputs(src.attrs)
                if v.port >= n_out:
                    problems.append(f"{name}: reads output {v.port} of {v.node}, which has {n_out}")
        inputs = {n.name for n in self.input_nodes()}
        if not inputs:
            problems.append("the graph has no input node")
        if not self.output_nodes():
            problems.append("the graph has no output node")
        reach: set[str] = set()
        for i in inputs:
            reach |= nx.descendants(self._g, i)
        for out in self.output_nodes():
            if out.name not in reach:
                problems.append(f"{out.name}: output is not reachable from any input")
        if problems:
            raise VerifyError(f"graph {self.name!r} is invalid:\n  " + "\n  ".join(problems))

    # ------------------------------------------------------------------ internals
    def _rec(self, name: str) -> _NodeRecord:
        try:
            return self._g.nodes[name]["rec"]
        except KeyError:
            raise KeyError(f"no node named {name!r} in graph {self.name!r}") from None

    def _slots(self, name: str) -> list[int]:
        return sorted(k for _, _, k in self._g.in_edges(name, keys=True))

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes, {self.num_edges()} edges)"

    def __str__(self) -> str:
        from spdnn.ir.printer import format_graph

        return format_graph(self)
